package install

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// metric is one Prometheus metric family declared in Go source.
type metric struct {
	kind   string // Counter, Gauge, Histogram, Summary
	labels []string
	where  string
}

// series are the names a family exports: histograms and summaries add
// _bucket/_sum/_count.
func (m metric) series(name string) []string {
	switch m.kind {
	case "Histogram":
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case "Summary":
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// metricScanner finds every prometheus.{Counter,Gauge,Histogram,Summary}Opts
// literal in the Go source of a module and resolves its Namespace, Subsystem
// and Name, following string constants across the module's packages. It
// reads the code as it is now, so the dashboard test needs no list of names.
type metricScanner struct {
	modPath, modDir string
	fset            *token.FileSet
	pkgs            map[string]*scannedPkg // by directory
	// wrapLabels are added by prometheus.WrapRegistererWith somewhere.
	wrapLabels []string
}

type scannedPkg struct {
	files  []*ast.File
	consts map[string]constDef
}

type constDef struct {
	expr ast.Expr
	file *ast.File
}

func newMetricScanner(modPath, modDir string) *metricScanner {
	return &metricScanner{modPath: modPath, modDir: modDir, fset: token.NewFileSet(), pkgs: map[string]*scannedPkg{}}
}

func (s *metricScanner) pkg(dir string) (*scannedPkg, error) {
	if p, ok := s.pkgs[dir]; ok {
		return p, nil
	}
	p := &scannedPkg{consts: map[string]constDef{}}
	s.pkgs[dir] = p
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(s.fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						p.consts[name.Name] = constDef{vs.Values[i], f}
					}
				}
			}
		}
	}
	return p, nil
}

// str evaluates a constant string expression written in dir/file.
func (s *metricScanner) str(dir string, f *ast.File, e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			v, err := strconv.Unquote(x.Value)
			return v, err == nil
		}
	case *ast.ParenExpr:
		return s.str(dir, f, x.X)
	case *ast.BinaryExpr:
		if x.Op == token.ADD {
			a, ok1 := s.str(dir, f, x.X)
			b, ok2 := s.str(dir, f, x.Y)
			return a + b, ok1 && ok2
		}
	case *ast.Ident:
		p, err := s.pkg(dir)
		if err != nil {
			return "", false
		}
		if c, ok := p.consts[x.Name]; ok {
			return s.str(dir, c.file, c.expr)
		}
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			name := filepath.Base(path)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name != id.Name || !strings.HasPrefix(path+"/", s.modPath+"/") {
				continue
			}
			other := filepath.Join(s.modDir, strings.TrimPrefix(path, s.modPath))
			p, err := s.pkg(other)
			if err != nil {
				return "", false
			}
			if c, ok := p.consts[x.Sel.Name]; ok {
				return s.str(other, c.file, c.expr)
			}
		}
	}
	return "", false
}

// scan walks the packages under the given directories of the module and
// adds their metric families to out.
func (s *metricScanner) scan(t *testing.T, out map[string]metric, dirs ...string) {
	t.Helper()
	for _, top := range dirs {
		err := filepath.WalkDir(filepath.Join(s.modDir, top), func(dir string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") {
				return filepath.SkipDir
			}
			p, err := s.pkg(dir)
			if err != nil {
				return err
			}
			for _, f := range p.files {
				s.scanFile(t, dir, f, out)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", top, err)
		}
	}
}

func (s *metricScanner) scanFile(t *testing.T, dir string, f *ast.File, out map[string]metric) {
	t.Helper()
	// Labels come from the []string{...} after the opts in NewXxxVec calls.
	labelsOf := map[*ast.CompositeLit][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 2 {
			return true
		}
		// prometheus.WrapRegistererWith(prometheus.Labels{...}, reg) adds
		// labels to everything registered through it.
		if fn, ok := call.Fun.(*ast.SelectorExpr); ok && fn.Sel.Name == "WrapRegistererWith" {
			if lbls, ok := call.Args[0].(*ast.CompositeLit); ok {
				for _, e := range lbls.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if v, ok := s.str(dir, f, kv.Key); ok {
							s.wrapLabels = append(s.wrapLabels, v)
						}
					}
				}
			}
		}
		opts, ok1 := call.Args[0].(*ast.CompositeLit)
		list, ok2 := call.Args[1].(*ast.CompositeLit)
		if ok1 && ok2 {
			for _, e := range list.Elts {
				if v, ok := s.str(dir, f, e); ok {
					labelsOf[opts] = append(labelsOf[opts], v)
				}
			}
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := lit.Type.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		kind, ok := strings.CutSuffix(sel.Sel.Name, "Opts")
		if id, isID := sel.X.(*ast.Ident); !ok || !isID || id.Name != "prometheus" ||
			(kind != "Counter" && kind != "Gauge" && kind != "Histogram" && kind != "Summary") {
			return true
		}
		parts := map[string]string{}
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key := kv.Key.(*ast.Ident).Name
			if key != "Namespace" && key != "Subsystem" && key != "Name" {
				continue
			}
			v, ok := s.str(dir, f, kv.Value)
			if !ok {
				t.Logf("%s: cannot resolve %s of a metric; it is not checked", s.fset.Position(kv.Pos()), key)
				return true
			}
			parts[key] = v
		}
		var name []string
		for _, k := range []string{"Namespace", "Subsystem", "Name"} {
			if parts[k] != "" {
				name = append(name, parts[k])
			}
		}
		if len(name) > 0 {
			out[strings.Join(name, "_")] = metric{kind: kind, labels: labelsOf[lit], where: s.fset.Position(lit.Pos()).String()}
		}
		return true
	})
}

// exportedMetrics returns the metric families declared by Portico (the
// operator and gatewaypod) and by controller-runtime, which the manager
// serves on the same endpoint, plus the labels Portico adds by wrapping a
// registerer.
func exportedMetrics(t *testing.T) (map[string]metric, []string) {
	t.Helper()
	out := map[string]metric{}
	rootAbs, _ := filepath.Abs(root)
	ours := newMetricScanner("github.com/portico-dev/portico", rootAbs)
	ours.scan(t, out, "cmd", "controllers", "gatewaypod", "internal")

	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime")
	cmd.Dir = root
	dir, err := cmd.Output()
	if err != nil {
		t.Fatalf("locate controller-runtime: %v", err)
	}
	newMetricScanner("sigs.k8s.io/controller-runtime", strings.TrimSpace(string(dir))).scan(t, out, "pkg")
	return out, ours.wrapLabels
}
