package docgen

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portico-dev/portico/controllers/annotations"
)

// TestUpToDate: the committed generated docs match the CRD and the
// annotation tables as they are now.
func TestUpToDate(t *testing.T) {
	files, err := Files("../..")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join("../..", p))
		if err != nil {
			t.Errorf("%s: %v (run `make docs`)", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make docs` (-committed +generated):\n%s", p, cmp.Diff(string(got), string(want)))
		}
	}
}

// constValues returns the string constants of the Go files in dir whose
// names match re (read from source, so nothing has to be exported).
func constValues(t *testing.T, dir string, re *regexp.Regexp) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) || !re.MatchString(n.Name) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return out
}

// TestTroubleshootingCoversReasons: every condition reason, compile result
// reason and Event reason in the code is explained in docs/troubleshooting.md.
func TestTroubleshootingCoversReasons(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]*regexp.Regexp{
		"../../api/v1alpha1":            regexp.MustCompile(`^GatewayConfig(Reason|Condition)`),
		"../../controllers/compile":     regexp.MustCompile(`^Reason`),
		"../../controllers":             regexp.MustCompile(`^EventReason`),
		"../../controllers/annotations": regexp.MustCompile(`^Reason`),
	}
	for dir, re := range sources {
		consts := constValues(t, dir, re)
		if len(consts) == 0 {
			t.Errorf("no constants matching %s in %s", re, dir)
		}
		for name, v := range consts {
			if !bytes.Contains(doc, []byte("`"+v+"`")) {
				t.Errorf("docs/troubleshooting.md does not explain %s (%s.%s)", v, filepath.Base(dir), name)
			}
		}
	}
}

// section returns the Markdown between the heading that starts with title
// and the next heading of the same level.
func section(doc, title string) string {
	i := strings.Index(doc, "\n## "+title)
	if i < 0 {
		return ""
	}
	rest := doc[i+4:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestAnnotationGuide holds docs/annotations.md to the code: what it calls
// refused or not supported is rejected with that reason, and its examples
// parse without errors or unknown-annotation warnings.
func TestAnnotationGuide(t *testing.T) {
	data, err := os.ReadFile("../../docs/annotations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	names := regexp.MustCompile("`([a-z0-9-]+)`")
	check := func(title, reason string) {
		sec := section(doc, title)
		if sec == "" {
			t.Fatalf("no section %q", title)
		}
		n := 0
		for _, line := range strings.Split(sec, "\n") {
			if strings.HasPrefix(line, "| Annotation") || strings.HasPrefix(line, "|---") {
				continue
			}
			if strings.HasPrefix(line, "|") { // a table: only the first column names annotations
				line = strings.SplitN(line, "|", 3)[1]
			}
			for _, m := range names.FindAllStringSubmatch(line, -1) {
				if strings.HasSuffix(m[1], "-") {
					continue
				}
				n++
				_, err := annotations.ParseMap(map[string]string{annotations.NginxPrefix + m[1]: "x"})
				var ae *annotations.Error
				if !errors.As(err, &ae) || ae.Reason != reason {
					t.Errorf("%s: %s gives %v, the guide says %s", title, m[1], err, reason)
				}
			}
		}
		if n == 0 {
			t.Errorf("section %q names no annotation", title)
		}
	}
	check("Refused", annotations.ReasonRefusedAnnotation)
	check("Not supported yet", annotations.ReasonUnsupportedAnnotation)

	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no examples")
	}
	for _, b := range blocks {
		m := map[string]string{}
		for _, line := range strings.Split(b[1], "\n") {
			line, _, _ = strings.Cut(line, " #")
			k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if ok && (strings.HasPrefix(k, annotations.NginxPrefix) || strings.HasPrefix(k, annotations.PorticoPrefix)) {
				m[k] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		cfg, err := annotations.ParseMap(m)
		if err != nil {
			t.Errorf("example %v: %v", m, err)
		}
		for _, w := range cfg.Warnings {
			t.Errorf("example %v: warning %s", m, w)
		}
	}
}
