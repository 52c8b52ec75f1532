package compile

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestTenThousandIngressesPublishable runs, on the snapshot of 10,000
// Ingresses (50,000 endpoints), what the operator runs before it writes
// (decode and validate) and how it writes (render.SnapshotConfigMaps at the
// default part size), then reads it back as a gateway pod does. Every
// ConfigMap stays under the 1 MiB cap. It logs the bytes and ConfigMaps.
func TestTenThousandIngressesPublishable(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test: 10,000 Ingresses")
	}
	out := Compile(scaleInputs(10000))
	if _, err := snapshot.Decode(out.Encoded); err != nil {
		t.Fatalf("the snapshot of 10,000 Ingresses fails the pods' validation: %v", err)
	}
	inst := render.NewInstance(&gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"}}, render.Params{Namespace: "ops"})
	for _, partSize := range []int{0, 128 << 10} {
		cms, err := inst.SnapshotConfigMaps(out.Encoded, out.Snapshot.Version, partSize)
		if err != nil {
			t.Fatalf("part size %d: not publishable: %v", partSize, err)
		}
		head := cms[len(cms)-1]
		data := []byte(head.Data[snapshot.ConfigMapKey])
		if raw, ok := head.Data[snapshot.ManifestKey]; ok {
			m, err := snapshot.ParseManifest([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			var parts []snapshot.Part
			for _, cm := range cms[:len(cms)-1] {
				parts = append(parts, snapshot.Part{Version: cm.Data[snapshot.PartVersionKey], Data: []byte(cm.Data[snapshot.PartKey])})
			}
			if data, err = m.Assemble(data, parts); err != nil {
				t.Fatal(err)
			}
		}
		got, err := snapshot.Decode(data)
		if err != nil || got.Version != out.Snapshot.Version {
			t.Fatalf("part size %d: read back %v, %v", partSize, got, err)
		}
		for _, cm := range cms {
			size := 0
			for k, v := range cm.Data {
				size += len(k) + len(v)
			}
			if size > 1<<20 {
				t.Errorf("ConfigMap %s holds %d bytes, above the 1 MiB cap", cm.Name, size)
			}
		}
		t.Logf("10,000 Ingresses, part size %d: %d encoded bytes in %d ConfigMaps", partSize, len(out.Encoded), len(cms))
	}
}
