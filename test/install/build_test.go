package install

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/hack/bundlegen"
)

// testImage stands in for --build-arg IMG=...: the manager must carry it as
// its default gateway image.
const testImage = "registry.example/portico:build-test"

// dockerfile is the part of the Dockerfile a build depends on.
type dockerfile struct {
	args    map[string]string // ARG defaults of the builder stage
	env     []string          // ENV of the builder stage, expanded
	workdir string
	copies  [][2]string // builder-stage COPY src dest
	builds  [][]string  // go build command lines, expanded
	final   []string    // lines of the last stage
}

// parseDockerfile reads the builder stage of file; overrides play the part
// of --build-arg.
func parseDockerfile(t *testing.T, file string, overrides map[string]string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur += c + " "
			continue
		}
		if cur+l != "" {
			lines = append(lines, cur+l)
		}
		cur = ""
	}
	df := dockerfile{args: map[string]string{}}
	stage := 0
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return df.args[k] })
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		if strings.EqualFold(instr, "FROM") {
			stage++
			if stage > 1 {
				df.final = nil
			}
			continue
		}
		if stage > 1 {
			df.final = append(df.final, l)
			continue
		}
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			if o, ok := overrides[k]; ok {
				v = o
			}
			df.args[k] = v
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				df.env = append(df.env, expand(kv))
			}
		case "WORKDIR":
			df.workdir = rest
		case "COPY":
			f := strings.Fields(rest)
			for _, src := range f[:len(f)-1] {
				df.copies = append(df.copies, [2]string{src, f[len(f)-1]})
			}
		case "RUN":
			for _, cmd := range strings.Split(rest, "&&") {
				words := shellWords(t, expand(strings.TrimSpace(cmd)))
				if len(words) > 1 && words[0] == "go" && words[1] == "build" {
					df.builds = append(df.builds, words)
				}
			}
		}
	}
	return df
}

// shellWords splits a command line on blanks, honouring double quotes.
func shellWords(t *testing.T, s string) []string {
	var out []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// TestDockerfileBuild builds both binaries exactly as the Dockerfile does:
// only the files it COPYs, its ENV (CGO_ENABLED=0, GOOS/GOARCH from the
// TARGETOS/TARGETARCH defaults) and its go build lines. A package outside the
// copied directories, a cgo dependency or a broken flag fails here rather
// than in the image build.
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"), map[string]string{"IMG": testImage})
	if len(df.builds) != 2 {
		t.Fatalf("want two go build commands in the builder stage, got %v", df.builds)
	}
	if !slices.Contains(df.env, "CGO_ENABLED=0") {
		t.Errorf("builder ENV %v lacks CGO_ENABLED=0", df.env)
	}

	ws := t.TempDir()
	out := t.TempDir()
	for _, c := range df.copies {
		src, dest := c[0], path.Join(df.workdir, c[1])
		if strings.HasSuffix(c[1], "/") && !strings.HasSuffix(src, "/") {
			dest = path.Join(dest, path.Base(src)) // a file into a directory
		}
		rel, err := filepath.Rel(df.workdir, dest)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("COPY %s %s leaves WORKDIR %s", c[0], c[1], df.workdir)
		}
		if err := os.CopyFS(filepath.Join(ws, rel), os.DirFS(filepath.Join(root, src))); err != nil {
			if data, ferr := os.ReadFile(filepath.Join(root, src)); ferr == nil { // a single file
				err = os.WriteFile(filepath.Join(ws, rel), data, 0o644)
			}
			if err != nil {
				t.Fatalf("COPY %s: %v", src, err)
			}
		}
	}
	env := append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	env = append(env, df.env...)
	var bins []string
	for _, words := range df.builds {
		i := slices.Index(words, "-o")
		if i < 0 || i+1 >= len(words) {
			t.Fatalf("go build without -o: %v", words)
		}
		bin := filepath.Join(out, path.Base(words[i+1]))
		words[i+1] = bin
		bins = append(bins, bin)
		cmd := exec.Command("go", words[1:]...)
		cmd.Dir, cmd.Env = ws, env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, b)
		}
	}

	// Static Linux executables, the manager stamped with its default image.
	for _, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", filepath.Base(bin))
			}
		}
		f.Close()
	}
	data, err := os.ReadFile(filepath.Join(out, "manager"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), testImage) {
		t.Errorf("manager does not carry %s: -X main.defaultImage=${IMG} had no effect", testImage)
	}

	// The final stage ships both where the manifests expect them: the manager
	// Deployment runs /manager, gateway pods run render.GatewayCommand.
	final := strings.Join(df.final, "\n")
	for _, want := range []string{"/manager", render.GatewayCommand} {
		if !regexp.MustCompile(`COPY --from=\S+ \S+ ` + regexp.QuoteMeta(want) + `\n`).MatchString(final + "\n") {
			t.Errorf("final stage does not COPY a binary to %s:\n%s", want, final)
		}
	}
	if !strings.Contains(final, "USER 65532:65532") {
		t.Errorf("final stage does not run as the distroless nonroot user:\n%s", final)
	}
	objs, err := bundlegen.Kustomize(root, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range find(objs, "Deployment") {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			cmd, _ := c.(map[string]any)["command"].([]any)
			if len(cmd) == 0 || cmd[0] != "/manager" {
				t.Errorf("manager container command %v, the image has /manager", cmd)
			}
		}
	}
}
