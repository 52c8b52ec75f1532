package source

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// sealedHosts returns a valid encoded snapshot with hosts virtual hosts
// whose backends are named after name: a few KiB, to split in small parts.
func sealedHosts(name string, hosts int) (version string, data []byte) {
	s := &snapshot.Snapshot{}
	for i := range hosts {
		s.Hosts = append(s.Hosts, snapshot.VirtualHost{Host: fmt.Sprintf("h%03d.example.com", i), Routes: []snapshot.Route{{
			Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: name, Endpoints: []string{"127.0.0.1:1"}},
		}}})
	}
	data = snapshot.Seal(s)
	return s.Version, data
}

// splitConfigMaps builds the ConfigMaps of a payload split like the
// operator does: parts (head-1 ... head-n-1) and the head with the manifest.
func splitConfigMaps(t *testing.T, head string, data []byte, version string, partSize int) (*corev1.ConfigMap, []*corev1.ConfigMap) {
	t.Helper()
	chunks, m, err := snapshot.Split(data, version, partSize)
	if err != nil || m == nil {
		t.Fatalf("Split: %v (manifest %v)", err, m)
	}
	h := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: head}, Data: map[string]string{
		snapshot.ConfigMapKey: string(chunks[0]), snapshot.ManifestKey: string(snapshot.MarshalManifest(m)),
	}}
	var parts []*corev1.ConfigMap
	for i, c := range chunks[1:] {
		parts = append(parts, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: snapshot.PartName(head, i+1)},
			Data: map[string]string{snapshot.PartKey: string(c), snapshot.PartVersionKey: version}})
	}
	return h, parts
}

// put creates or replaces cm in ns.
func put(t *testing.T, ns string, cm *corev1.ConfigMap) {
	t.Helper()
	ctx := context.Background()
	cur, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil {
		if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	c := cur.DeepCopy()
	c.Data = cm.Data
	if _, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runSource runs s until t ends, and checks that Run returns nil.
func runSource(t *testing.T, s *Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestRunSplitConfigMap drives a source against a real API server through
// the orders a reader can see split snapshots in.
func TestRunSplitConfigMap(t *testing.T) {
	const head, partSize = "gw-snapshot", 700
	vA, a := sealedHosts("a", 20)
	vB, b := sealedHosts("b", 20)
	vC, c := sealedHosts("c", 20)
	vD, d := sealedHosts("d", 20)
	ns := newNamespace(t)
	s, rec, _ := newSource(t, Options{Namespace: ns, ConfigMap: head, Client: kube, PartRetry: 20 * time.Millisecond})
	incomplete := func() float64 { return testutil.ToFloat64(s.rejected.WithLabelValues(ReasonPartsIncomplete)) }

	// A: parts first, head last, as the operator writes.
	hA, pA := splitConfigMaps(t, head, a, vA, partSize)
	if len(pA) < 2 {
		t.Fatalf("A is in %d parts, want at least 3 ConfigMaps", len(pA)+1)
	}
	for _, p := range pA {
		put(t, ns, p)
	}
	put(t, ns, hA)

	runSource(t, s)
	eventually(t, "split snapshot A assembled", func() bool { return s.Version() == vA })

	// B: parts, then head.
	hB, pB := splitConfigMaps(t, head, b, vB, partSize)
	for _, p := range pB {
		put(t, ns, p)
	}
	put(t, ns, hB)
	eventually(t, "split snapshot B assembled", func() bool { return s.Version() == vB })

	// C: the head arrives while the parts still belong to B: refused (all
	// or nothing: no mixture of B and C is ever served), then accepted
	// when the parts catch up, by retry alone.
	hC, pC := splitConfigMaps(t, head, c, vC, partSize)
	put(t, ns, hC)
	eventually(t, "stale parts refused", func() bool { return incomplete() == 1 })
	if got := s.Version(); got != vB {
		t.Fatalf("after a head with stale parts Version = %q, want %q", got, vB)
	}
	for _, p := range pC {
		put(t, ns, p)
	}
	eventually(t, "split snapshot C once its parts caught up", func() bool { return s.Version() == vC })

	// D: one part missing: refused until it exists.
	hD, pD := splitConfigMaps(t, head, d, vD, partSize)
	last := pD[len(pD)-1]
	if err := kube.CoreV1().ConfigMaps(ns).Delete(context.Background(), last.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pD[:len(pD)-1] {
		put(t, ns, p)
	}
	put(t, ns, hD)
	eventually(t, "missing part refused", func() bool { return incomplete() == 2 })
	if got := s.Version(); got != vC {
		t.Fatalf("with a part missing Version = %q, want %q", got, vC)
	}
	put(t, ns, last)
	eventually(t, "split snapshot D once its last part exists", func() bool { return s.Version() == vD })

	// Back to one ConfigMap: a small snapshot replaces the split one.
	vE, e := sealed("e")
	put(t, ns, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: head}, Data: map[string]string{snapshot.ConfigMapKey: string(e)}})
	eventually(t, "unsplit snapshot E", func() bool { return s.Version() == vE })

	if got, want := rec.versions(), []string{vA, vB, vC, vD, vE}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(s.rejected.WithLabelValues(ReasonInvalid)); got != 0 {
		t.Errorf("rejected{Invalid} = %v, want 0", got)
	}
}

// TestRunSplitConfigMapAlteredPart: a part with the head's version but other
// bytes (hash mismatch) is never served.
func TestRunSplitConfigMapAlteredPart(t *testing.T) {
	const head = "gw-snapshot"
	vA, a := sealedHosts("a", 20)
	ns := newNamespace(t)
	h, parts := splitConfigMaps(t, head, a, vA, 700)
	parts[0].Data[snapshot.PartKey] = "x" + parts[0].Data[snapshot.PartKey][1:]
	for _, p := range parts {
		put(t, ns, p)
	}
	put(t, ns, h)
	s, rec, _ := newSource(t, Options{Namespace: ns, ConfigMap: head, Client: kube, PartRetry: 20 * time.Millisecond})
	runSource(t, s)
	eventually(t, "altered part refused", func() bool {
		return testutil.ToFloat64(s.rejected.WithLabelValues(ReasonPartsIncomplete)) == 1
	})
	if got := rec.versions(); len(got) != 0 {
		t.Errorf("applied %v from an altered part", got)
	}
}

// writeSplitFiles lays a split payload out like the kubelet mounts it: the
// head ConfigMap's keys in dir, the parts under partsDir.
func writeSplitFiles(t *testing.T, dir, partsDir string, h *corev1.ConfigMap, parts []*corev1.ConfigMap) {
	t.Helper()
	for k, v := range h.Data {
		writeAtomic(t, filepath.Join(dir, k), []byte(v))
	}
	for i, p := range parts {
		for _, k := range []string{snapshot.PartKey, snapshot.PartVersionKey} {
			path := filepath.Join(partsDir, podflags.SnapshotPartFile(i+1, k))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			writeAtomic(t, path, []byte(p.Data[k]))
		}
	}
}

// TestSplitFile: the mounted copy of a split snapshot is assembled from the
// head's files and the parts directory, all or nothing.
func TestSplitFile(t *testing.T) {
	vA, a := sealedHosts("a", 20)
	vB, b := sealedHosts("b", 20)
	dir, partsDir := t.TempDir(), t.TempDir()
	hA, pA := splitConfigMaps(t, "cm", a, vA, 700)
	writeSplitFiles(t, dir, partsDir, hA, pA)
	s, rec, _ := newSource(t, Options{File: filepath.Join(dir, snapshot.ConfigMapKey), PartsDir: partsDir})
	s.loadFile(true)
	if s.Version() != vA {
		t.Fatalf("Version = %q, want %q from the mounted parts", s.Version(), vA)
	}

	// B's head with A's parts: refused, once however often it is polled.
	hB, pB := splitConfigMaps(t, "cm", b, vB, 700)
	writeSplitFiles(t, dir, partsDir, hB, nil)
	s.loadFile(false)
	s.loadFile(false)
	if got := testutil.ToFloat64(s.rejected.WithLabelValues(ReasonPartsIncomplete)); got != 1 || s.Version() != vA {
		t.Fatalf("stale part files: rejected %v, Version %q", got, s.Version())
	}
	writeSplitFiles(t, dir, partsDir, hB, pB)
	s.loadFile(false)
	if s.Version() != vB {
		t.Fatalf("Version = %q, want %q once the part files caught up", s.Version(), vB)
	}

	// Without a parts directory a split head is never served from files.
	noParts, rec2, _ := newSource(t, Options{File: filepath.Join(dir, snapshot.ConfigMapKey)})
	noParts.loadFile(true)
	if noParts.Version() != "" || len(rec2.versions()) != 0 {
		t.Fatalf("served %q without parts", noParts.Version())
	}
	if got := rec.versions(); !slices.Equal(got, []string{vA, vB}) {
		t.Errorf("applied %v", got)
	}
}

// TestRunSplitConfigMapForbiddenParts: a pod whose Role names only the head
// (as before splitting existed) cannot read the parts. The snapshot is
// refused, counted once however often it is retried, and served as soon as
// the Role names the parts.
func TestRunSplitConfigMapForbiddenParts(t *testing.T) {
	const head, user = "gw-snapshot", "gateway-pod"
	ctx := context.Background()
	vA, a := sealedHosts("a", 20)
	ns := newNamespace(t)
	h, parts := splitConfigMaps(t, head, a, vA, 700)
	for _, p := range parts {
		put(t, ns, p)
	}
	put(t, ns, h)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "gateway"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{head}, Verbs: []string{"get", "list", "watch"}}}}
	role, err := kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "gateway"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(api.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	var partGets atomic.Int32 // GETs of part 1, each one attempt to assemble
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/"+snapshot.PartName(head, 1)) {
				partGets.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	podClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, rec, _ := newSource(t, Options{Namespace: ns, ConfigMap: head, Client: podClient, PartRetry: 20 * time.Millisecond})
	runSource(t, s)
	incomplete := func() float64 { return testutil.ToFloat64(s.rejected.WithLabelValues(ReasonPartsIncomplete)) }
	eventually(t, "forbidden parts refused", func() bool { return incomplete() == 1 })
	// Retries go on (backoff from 20ms) without counting again.
	eventually(t, "three more attempts", func() bool { return partGets.Load() >= 4 })
	if got := incomplete(); got != 1 || s.Version() != "" {
		t.Fatalf("after retries: rejected %v, Version %q", got, s.Version())
	}
	for _, p := range parts {
		role.Rules[0].ResourceNames = append(role.Rules[0].ResourceNames, p.Name)
	}
	if _, err := kube.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "split snapshot once the Role names the parts", func() bool { return s.Version() == vA })
	if got := rec.versions(); !slices.Equal(got, []string{vA}) {
		t.Errorf("applied %v", got)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
