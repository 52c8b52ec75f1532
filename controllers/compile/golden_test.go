package compile

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the compiler's output")

// loadInputs reads a multi-document YAML of Kubernetes objects into Inputs.
func loadInputs(t testing.TB, file, instance string) Inputs {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	in := Inputs{Instance: instance}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		var target any
		switch tm.Kind {
		case "IngressClass":
			in.IngressClasses = append(in.IngressClasses, networkingv1.IngressClass{})
			target = &in.IngressClasses[len(in.IngressClasses)-1]
		case "Ingress":
			in.Ingresses = append(in.Ingresses, networkingv1.Ingress{})
			target = &in.Ingresses[len(in.Ingresses)-1]
		case "Service":
			in.Services = append(in.Services, corev1.Service{})
			target = &in.Services[len(in.Services)-1]
		case "EndpointSlice":
			in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{})
			target = &in.EndpointSlices[len(in.EndpointSlices)-1]
		case "Secret":
			in.Secrets = append(in.Secrets, corev1.Secret{})
			target = &in.Secrets[len(in.Secrets)-1]
		default:
			t.Fatalf("%s document %d: unknown kind %q", file, i, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
	}
	return in
}

// golden is what a golden file records.
type golden struct {
	Snapshot     *snapshot.Snapshot `json:"snapshot"`
	EncodedBytes int                `json:"encodedBytes"`
	TLSDataKeys  []string           `json:"tlsDataKeys,omitempty"`
	Results      []Result           `json:"results"`
	Warnings     []Warning          `json:"warnings,omitempty"`
}

// TestGolden compiles testdata/<case>.in.yaml and compares with
// <case>.out.yaml; run with -update to rewrite the expected files.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.in.yaml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			out := Compile(loadInputs(t, in, "gw"))
			if _, err := snapshot.Decode(out.Encoded); err != nil {
				t.Fatalf("snapshot does not decode: %v", err)
			}
			g := golden{Snapshot: out.Snapshot, EncodedBytes: len(out.Encoded), Results: out.Results, Warnings: out.Warnings}
			for k := range out.TLSData {
				g.TLSDataKeys = append(g.TLSDataKeys, k)
			}
			slices.Sort(g.TLSDataKeys)
			got, err := yaml.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", name+".out.yaml")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got); run go test ./controllers/compile -update if intended:\n%s", file, diff)
			}
		})
	}
}

func ExampleCompile() {
	out := Compile(Inputs{Instance: "gw"})
	fmt.Println(out.Snapshot.Version != "", len(out.Results))
	// Output: true 0
}
