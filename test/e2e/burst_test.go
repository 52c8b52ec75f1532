package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// A burst of Ingresses becomes a handful of snapshot writes: the operator
// publishes at most once per controllers.DefaultMinPublishInterval per instance.
// count keeps the final snapshot (about 140 bytes per Ingress) inside this
// suite's snapshot.MaxParts x e2eSnapshotPartSize, so the last write is the
// whole burst, not a SnapshotTooLarge refusal.
var _ = Describe("A burst of 600 Ingresses", Ordered, func() {
	const (
		instance = "burst"
		ns       = "burst"
		count    = 600
	)

	It("is published in a handful of ConfigMap writes", func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest, Replicas: ptr.To(int32(0)),
				IngressNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}}})).To(Succeed())
		cmKey := types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + instance + "-snapshot"}
		Eventually(func() error { return k8sClient.Get(ctx, cmKey, &corev1.ConfigMap{}) }, 30*time.Second, 200*time.Millisecond).Should(Succeed())

		wc, err := client.NewWithWatch(cluster.Config, client.Options{})
		Expect(err).NotTo(HaveOccurred())
		w, err := wc.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(cmKey.Namespace),
			client.MatchingFields{"metadata.name": cmKey.Name})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		writes := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range w.ResultChan() {
				if ev.Type == watch.Modified {
					writes++
				}
			}
		}()

		start := time.Now()
		for i := range count { // bounded: exactly count creates
			Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("site-%04d", i)},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(instance), Rules: []networkingv1.IngressRule{{
					Host: fmt.Sprintf("site-%04d.example.com", i),
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "web")}}},
				}}},
			})).To(Succeed())
		}
		created := time.Since(start)
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(count)))
			// Published, not refused: the head ConfigMap carries the version
			// status reports, and nothing says the snapshot was too large.
			g.Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)).To(BeFalse(),
				"%v", gc.Status.Conditions)
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
			g.Expect(gc.Status.Snapshot.Version).NotTo(BeEmpty())
			g.Expect(cm.Annotations[podflags.AnnotationSnapshotVersion]).To(Equal(gc.Status.Snapshot.Version))
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
		settled := time.Since(start)
		time.Sleep(2 * controllers.DefaultMinPublishInterval) // let a last held-back write land
		w.Stop()
		<-done

		// At most one write per interval while Ingresses arrive, plus the last.
		bound := int(settled/controllers.DefaultMinPublishInterval) + 2
		GinkgoWriter.Printf("%d Ingresses created in %s, all in the snapshot after %s, %d ConfigMap writes (bound %d)\n",
			count, created.Round(time.Millisecond), settled.Round(time.Millisecond), writes, bound)
		Expect(writes).To(BeNumerically(">=", 1))
		Expect(writes).To(BeNumerically("<=", bound))
		Expect(writes).To(BeNumerically("<", count/10), "a burst must not become a write per Ingress")
	})
})
