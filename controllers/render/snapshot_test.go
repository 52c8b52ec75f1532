package render

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func testInstance() Instance {
	return NewInstance(&gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"}}, Params{Namespace: "ops"})
}

func TestSnapshotConfigMaps(t *testing.T) {
	tests := map[string]struct {
		payload   string
		partSize  int
		wantNames []string
		tooLarge  bool
	}{
		"small payload is the head alone, no manifest": {
			payload: "{}", wantNames: []string{"portico-gw-snapshot"},
		},
		"exactly one part size is not split": {
			payload: "abcd", partSize: 4, wantNames: []string{"portico-gw-snapshot"},
		},
		"split into three: parts first, head last": {
			payload: "0123456789", partSize: 4,
			wantNames: []string{"portico-gw-snapshot-1", "portico-gw-snapshot-2", "portico-gw-snapshot"},
		},
		"beyond the part cap nothing is written": {
			payload: strings.Repeat("x", 4*snapshot.MaxParts+1), partSize: 4, tooLarge: true,
		},
	}
	inst := testInstance()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cms, err := inst.SnapshotConfigMaps([]byte(tc.payload), "v1-abc", tc.partSize)
			if tc.tooLarge {
				var tl *snapshot.TooLargeError
				if !errors.As(err, &tl) || cms != nil {
					t.Fatalf("got %d ConfigMaps, err %v; want none and a TooLargeError", len(cms), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, cm := range cms {
				names = append(names, cm.Name)
				if cm.Namespace != "ops" || cm.Labels[LabelGatewayConfig] != "gw" || cm.Annotations[podflags.AnnotationSnapshotVersion] != "v1-abc" {
					t.Errorf("%s: namespace %q labels %v annotations %v", cm.Name, cm.Namespace, cm.Labels, cm.Annotations)
				}
			}
			if diff := cmp.Diff(tc.wantNames, names); diff != "" {
				t.Fatalf("names (-want +got):\n%s", diff)
			}
			head := cms[len(cms)-1]
			raw, split := head.Data[snapshot.ManifestKey]
			if !split {
				if len(cms) != 1 || head.Data[snapshot.ConfigMapKey] != tc.payload {
					t.Fatalf("unsplit head holds %q", head.Data[snapshot.ConfigMapKey])
				}
				return
			}
			// What a reader does: manifest from the head, parts by name.
			m, err := snapshot.ParseManifest([]byte(raw))
			if err != nil || m.Parts() != len(cms) || m.Version != "v1-abc" {
				t.Fatalf("manifest %+v, %v", m, err)
			}
			var parts []snapshot.Part
			for _, cm := range cms[:len(cms)-1] {
				parts = append(parts, snapshot.Part{Version: cm.Data[snapshot.PartVersionKey], Data: []byte(cm.Data[snapshot.PartKey])})
			}
			got, err := m.Assemble([]byte(head.Data[snapshot.ConfigMapKey]), parts)
			if err != nil || string(got) != tc.payload {
				t.Fatalf("assembled %q, %v", got, err)
			}
		})
	}
}

// TestSplitGolden pins the wire form of a split snapshot (names, keys,
// manifest) in testdata/split-snapshot.out.yaml; -update rewrites it.
func TestSplitGolden(t *testing.T) {
	cms, err := testInstance().SnapshotConfigMaps([]byte(`{"schemaVersion":1,"version":"v1-0123456789abcdef","hosts":[]}`), "v1-0123456789abcdef", 24)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, cm := range cms {
		y, err := yaml.Marshal(cm)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString("---\n")
		got.Write(y)
	}
	compareGolden(t, filepath.Join("testdata", "split-snapshot.out.yaml"), got.String())
}

// TestPartsAccess: the Role names exactly the head and every possible part,
// and the Deployment mounts every part optionally where gatewaypod looks.
func TestPartsAccess(t *testing.T) {
	inst := testInstance()
	var cmRule []string
	for _, r := range inst.Role().Rules {
		if slices.Contains(r.Resources, "configmaps") {
			cmRule = r.ResourceNames
		}
	}
	want := []string{"portico-gw-snapshot"}
	for i := 1; i < snapshot.MaxParts; i++ {
		want = append(want, snapshot.PartName("portico-gw-snapshot", i))
	}
	if diff := cmp.Diff(want, cmRule); diff != "" {
		t.Errorf("configmaps resourceNames (-want +got):\n%s", diff)
	}
	d := inst.Deployment(Params{Image: "x"})
	var vol *corev1.Volume
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == partsVolume {
			vol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.Projected == nil || len(vol.Projected.Sources) != snapshot.MaxParts-1 {
		t.Fatalf("parts volume %+v", vol)
	}
	for i, src := range vol.Projected.Sources {
		cm := src.ConfigMap
		if cm.Name != want[i+1] || cm.Optional == nil || !*cm.Optional || cm.Items[0].Path != podflags.SnapshotPartFile(i+1, snapshot.PartKey) {
			t.Errorf("source %d: %+v", i, cm)
		}
	}
	flags, err := podflags.Parse(d.Spec.Template.Spec.Containers[0].Args)
	if err != nil || flags.SnapshotPartsDir != podflags.DefaultSnapshotPartsDir {
		t.Errorf("--snapshot-parts-dir %q, %v", flags.SnapshotPartsDir, err)
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == partsVolume && m.MountPath == podflags.DefaultSnapshotPartsDir
	}) {
		t.Error("parts volume not mounted at the default parts dir")
	}
}
