package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

// TestGolden renders every testdata/<case>.in.yaml GatewayConfig and compares
// all desired objects with testdata/<case>.out.yaml. Run with -update to
// accept a change after reading the diff.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			gc := &gatewayv1alpha1.GatewayConfig{}
			if err := yaml.UnmarshalStrict(b, gc); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			inst := NewInstance(gc, Params{Namespace: "portico-system", Image: "ghcr.io/portico-dev/portico:v0.0.1"})
			// Whatever the spec, gatewaypod parses the command line back to the same flags.
			if got, err := podflags.Parse(inst.Flags().Args()); err != nil || got != inst.Flags() {
				t.Fatalf("command line does not round-trip: %v\n got %+v\nwant %+v", err, got, inst.Flags())
			}
			objs := []any{inst.ServiceAccount(), inst.Role(), inst.RoleBinding(), inst.Service(), inst.Deployment(Params{Image: "ghcr.io/portico-dev/portico:v0.0.1"})}
			if pdb := inst.PodDisruptionBudget(); pdb != nil {
				objs = append(objs, pdb)
			}
			if hpa := inst.HorizontalPodAutoscaler(); hpa != nil {
				objs = append(objs, hpa)
			}
			var got bytes.Buffer
			for _, o := range objs {
				y, err := yaml.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString("---\n")
				got.Write(y)
			}
			compareGolden(t, filepath.Join("testdata", name+".out.yaml"), got.String())
		})
	}
}

// compareGolden compares got with the file at path, or rewrites the file
// with -update.
func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controllers/render -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); if intended, rerun with -update:\n%s", path, diff)
	}
}
