package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/compile"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// publishFixture is one GatewayConfig, its IngressClass and namespace, and
// helpers to add Ingresses and read what was published.
type publishFixture struct {
	name, ns string
	r        *GatewayConfigReconciler
}

func newPublishFixture(name string) *publishFixture {
	f := &publishFixture{name: name, ns: name}
	f.r = &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
		Params: render.Params{Namespace: f.ns, Image: "x"}}
	Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}))).To(Succeed())
	Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
			APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: name}}})).To(Succeed())
	return f
}

func (f *publishFixture) reconcile() {
	_, err := f.r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: f.name}})
	Expect(err).NotTo(HaveOccurred())
}

func (f *publishFixture) addIngress(name string) {
	Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(f.name), Rules: []networkingv1.IngressRule{{Host: name + ".example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}}}}},
	})).To(Succeed())
}

func (f *publishFixture) gatewayConfig() *gatewayv1alpha1.GatewayConfig {
	gc := &gatewayv1alpha1.GatewayConfig{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Name: f.name}, gc)).To(Succeed())
	return gc
}

func (f *publishFixture) head() string { return "portico-" + f.name + "-snapshot" }

func (f *publishFixture) configMap(name string) (*corev1.ConfigMap, bool) {
	cm := &corev1.ConfigMap{}
	err := k8sClient.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	Expect(err).NotTo(HaveOccurred())
	return cm, true
}

// published reads the snapshot the way a gateway pod does, from the head
// and its parts, and returns it with the number of ConfigMaps it spans.
func (f *publishFixture) published() (*snapshot.Snapshot, int) {
	head, ok := f.configMap(f.head())
	Expect(ok).To(BeTrue(), "head ConfigMap")
	data := []byte(head.Data[snapshot.ConfigMapKey])
	n := 1
	if raw, split := head.Data[snapshot.ManifestKey]; split {
		m, err := snapshot.ParseManifest([]byte(raw))
		Expect(err).NotTo(HaveOccurred())
		var parts []snapshot.Part
		for i := 1; i < m.Parts(); i++ {
			cm, ok := f.configMap(snapshot.PartName(f.head(), i))
			if !ok {
				parts = append(parts, snapshot.Part{Missing: true})
				continue
			}
			parts = append(parts, snapshot.Part{Version: cm.Data[snapshot.PartVersionKey], Data: []byte(cm.Data[snapshot.PartKey])})
		}
		data, err = m.Assemble(data, parts)
		Expect(err).NotTo(HaveOccurred())
		n = m.Parts()
	}
	s, err := snapshot.Decode(data)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.Version).To(Equal(head.Annotations[podflags.AnnotationSnapshotVersion]))
	return s, n
}

var _ = Describe("Split snapshot publishing", func() {
	It("writes a snapshot over several ConfigMaps and prunes the parts when it shrinks", func() {
		f := newPublishFixture("splitter")
		var encodedLen atomic.Int64
		f.r.Compile = func(in compile.Inputs) compile.Output {
			out := compile.Compile(in)
			encodedLen.Store(int64(len(out.Encoded)))
			return out
		}
		for i := range 8 {
			f.addIngress(fmt.Sprintf("app%d", i))
		}
		f.reconcile()
		s, n := f.published()
		Expect(n).To(Equal(1), "the default part size holds a small snapshot")

		// A part size of a third of the payload forces three ConfigMaps.
		f.r.Params.SnapshotPartSize = int(encodedLen.Load()+2) / 3
		f.reconcile()
		split, n := f.published()
		Expect(n).To(Equal(3))
		Expect(split.Version).To(Equal(s.Version))
		for i := 1; i <= 2; i++ {
			part, ok := f.configMap(snapshot.PartName(f.head(), i))
			Expect(ok).To(BeTrue())
			Expect(part.Data[snapshot.PartVersionKey]).To(Equal(s.Version))
			Expect(metav1.IsControlledBy(part, f.gatewayConfig())).To(BeTrue(), "parts are owned, so garbage collection removes them")
		}
		Expect(testutil.ToFloat64(metricSnapshotConfigMaps.WithLabelValues(f.name))).To(Equal(3.0))
		Expect(f.gatewayConfig().Status.Snapshot.Version).To(Equal(s.Version))

		// Idempotent: a second reconcile rewrites nothing.
		headBefore, _ := f.configMap(f.head())
		f.reconcile()
		headAfter, _ := f.configMap(f.head())
		Expect(headAfter.ResourceVersion).To(Equal(headBefore.ResourceVersion))

		// Shrink: fewer Ingresses fit in the head alone; the parts go.
		for i := 1; i < 8; i++ {
			Expect(k8sClient.Delete(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: fmt.Sprintf("app%d", i)}})).To(Succeed())
		}
		Eventually(func(g Gomega) {
			var list networkingv1.IngressList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
		}, 5*time.Second, 50*time.Millisecond).Should(Succeed())
		f.reconcile()
		small, n := f.published()
		Expect(n).To(Equal(1))
		Expect(small.Version).NotTo(Equal(s.Version))
		Expect(small.Hosts).To(HaveLen(1))
		head, _ := f.configMap(f.head())
		Expect(head.Data).NotTo(HaveKey(snapshot.ManifestKey))
		for i := 1; i < snapshot.MaxParts; i++ {
			_, ok := f.configMap(snapshot.PartName(f.head(), i))
			Expect(ok).To(BeFalse(), "part %d pruned", i)
		}
	})

	It("never publishes a snapshot that fails validation, says why, and recovers", func() {
		f := newPublishFixture("validator")
		var corrupt atomic.Bool
		f.r.Compile = func(in compile.Inputs) compile.Output {
			out := compile.Compile(in)
			if corrupt.Load() && len(out.Snapshot.Hosts) > 0 {
				// What a compiler bug would produce: a path the pods refuse.
				out.Snapshot.Hosts[0].Routes[0].Path = "no-leading-slash"
				out.Encoded = snapshot.Encode(snapshot.Seal(out.Snapshot))
			}
			return out
		}
		f.addIngress("first")
		f.reconcile()
		good, _ := f.published()
		goodCM, _ := f.configMap(f.head())

		corrupt.Store(true)
		f.addIngress("second")
		f.reconcile()
		f.reconcile() // the Event and the metric come once per refusal, not per reconcile
		cm, _ := f.configMap(f.head())
		Expect(cm.ResourceVersion).To(Equal(goodCM.ResourceVersion), "the last good ConfigMap is untouched")
		Expect(cm.Data).To(Equal(goodCM.Data))
		gc := f.gatewayConfig()
		Expect(gc.Status.Snapshot.Version).To(Equal(good.Version))
		degraded := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
		Expect(degraded).NotTo(BeNil())
		Expect(degraded.Status).To(Equal(metav1.ConditionTrue))
		Expect(degraded.Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid))
		Expect(degraded.Message).To(ContainSubstring("no-leading-slash"))
		Expect(testutil.ToFloat64(metricSnapshotRefused.WithLabelValues(f.name, gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid))).To(Equal(1.0))
		Eventually(func(g Gomega) {
			var evs eventsList
			g.Expect(k8sClient.List(ctx, &evs.EventList)).To(Succeed())
			g.Expect(evs.reasonsFor(f.name)).To(ContainElement(EventReasonSnapshotRefused))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())

		// Fixed input: published at once, Degraded clears.
		corrupt.Store(false)
		f.reconcile()
		fixed, _ := f.published()
		Expect(fixed.Version).NotTo(Equal(good.Version))
		Expect(fixed.Hosts).To(HaveLen(2))
		gc = f.gatewayConfig()
		Expect(gc.Status.Snapshot.Version).To(Equal(fixed.Version))
		Expect(meta.IsStatusConditionFalse(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)).To(BeTrue())
	})

	It("refuses a snapshot that needs more ConfigMaps than the maximum", func() {
		f := newPublishFixture("toolarge")
		f.addIngress("only")
		f.reconcile()
		good, _ := f.published()
		f.r.Params.SnapshotPartSize = 8 // far more than MaxParts parts
		f.addIngress("another")
		f.reconcile()
		again, n := f.published()
		Expect(again.Version).To(Equal(good.Version))
		Expect(n).To(Equal(1))
		_, ok := f.configMap(snapshot.PartName(f.head(), 1))
		Expect(ok).To(BeFalse(), "no part of a refused snapshot is written")
		gc := f.gatewayConfig()
		Expect(meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded).Reason).
			To(Equal(gatewayv1alpha1.GatewayConfigReasonSnapshotTooLarge))
	})
})

// staleReader serves a saved, outdated copy of one GatewayConfig, the way a
// lagging informer cache would; everything else comes from the API.
type staleReader struct {
	client.Reader
	old *gatewayv1alpha1.GatewayConfig
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if gc, ok := obj.(*gatewayv1alpha1.GatewayConfig); ok && key.Name == s.old.Name {
		s.old.DeepCopyInto(gc)
		return nil
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

var _ = Describe("GatewayConfig status writes", func() {
	It("never merge a status computed from an outdated read into a newer one", func() {
		f := newPublishFixture("stale")
		f.reconcile()
		old := f.gatewayConfig()
		f.addIngress("one")
		f.reconcile()
		current := f.gatewayConfig()
		Expect(current.Status.Snapshot.Version).NotTo(Equal(old.Status.Snapshot.Version))

		stale := &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder, Params: f.r.Params,
			APIReader: staleReader{Reader: k8sClient, old: old}}
		f.addIngress("two")
		_, err := stale.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: f.name}})
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
		Expect(f.gatewayConfig().Status).To(Equal(current.Status), "the stored status is left whole")

		f.reconcile() // with a fresh read the retry succeeds
		Expect(f.gatewayConfig().Status.Snapshot.AcceptedIngresses).To(Equal(int32(2)))
	})
})
