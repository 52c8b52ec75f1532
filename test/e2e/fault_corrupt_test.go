package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/gatewaypod/source"
)

// faultCorruptSpecs: a snapshot ConfigMap written by hand while the operator
// runs (corruptSnapshotSpecs covers a paused operator). Under steady load,
// the pods refuse it and count it, keep the last good snapshot, and the
// operator writes the good one back by itself.
func faultCorruptSpecs() {
	for _, tc := range []struct {
		name    string
		corrupt func(good string) string
	}{
		{"truncated", func(good string) string { return good[:len(good)/2] }},
		{"not JSON", func(string) string { return "\x00garbage{" }},
		{"valid JSON with a forged version", func(good string) string { return `{"schemaVersion":1,"version":"forged","hosts":[]}` }},
	} {
		It("refuses a "+tc.name+" snapshot, keeps serving and gets it repaired", func() {
			waitServing(faultInstance, 2)
			ips := gatewayPodIPs(faultInstance)
			rejected := func(ip string) float64 { return podMetric(ip, source.MetricSnapshotRejected) }
			before := map[string]float64{}
			for _, ip := range ips {
				before[ip] = rejected(ip)
			}
			published := publishes(faultInstance)
			stopLoad, _ := load{Workers: 4, Interval: 5 * time.Millisecond, Duration: 60 * time.Second, Targets: ips, Host: steadyHost, Path: "/c/%d"}.start()
			time.Sleep(500 * time.Millisecond)

			cm, cmKey, good := corruptSnapshot(faultInstance, tc.corrupt)
			start := time.Now()
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
				g.Expect(cm.Data[snapshot.ConfigMapKey]).To(Equal(good))
			}, 30*time.Second, 50*time.Millisecond).Should(Succeed(), "the operator writes the good snapshot back")
			repaired := time.Since(start)
			for _, ip := range ips {
				Eventually(func() float64 { return rejected(ip) }, 15*time.Second, 200*time.Millisecond).
					Should(BeNumerically(">", before[ip]), "pod %s refused and counted the bad payload", ip)
			}
			time.Sleep(500 * time.Millisecond) // traffic after the repair
			res := stopLoad()
			GinkgoWriter.Printf("corrupt %s: repaired in %s; %s\n", tc.name, repaired.Round(time.Millisecond), res)
			Expect(res.Failed).To(BeZero(), "%s", res)
			Expect(publishes(faultInstance)).To(Equal(published), "a repair is not a new snapshot")
			gc := waitServing(faultInstance, 2)
			expectNoRefusal(faultInstance)
			recordFault("corrupt ConfigMap: "+tc.name, "snapshot key overwritten by hand, operator running", res.Sent, res.Failed,
				fmt.Sprintf("refused by both pods (%s); repaired in %s; status %s, version %s", source.MetricSnapshotRejected,
					repaired.Round(time.Millisecond), gc.Status.Phase, gc.Status.Snapshot.Version))
		})
	}

	It("shows the pods' refusal in status, with an Event, while the operator is paused, and clears it after the repair", func() {
		waitServing(faultInstance, 2)
		ips := gatewayPodIPs(faultInstance)
		stopLoad, _ := load{Workers: 4, Interval: 5 * time.Millisecond, Duration: 90 * time.Second, Targets: ips, Host: steadyHost, Path: "/p/%d"}.start()
		// Paused, the operator leaves the ConfigMap alone: the refusal lasts
		// until it is unpaused, so the status is observed deterministically.
		gc := &gatewayv1alpha1.GatewayConfig{}
		gc.Name = faultInstance
		update(gc, func() { gc.Spec.Paused = true })
		defer update(gc, func() { gc.Spec.Paused = false }) // leave it healthy even on failure

		cm, cmKey, good := corruptSnapshot(faultInstance, func(good string) string { return good[:len(good)/2] })
		start := time.Now()
		var message string
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: faultInstance}, gc)).To(Succeed())
			g.Expect(gc.Status.Snapshot.RefusingReplicas).To(Equal(int32(2)))
			d := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
			g.Expect(d).NotTo(BeNil())
			g.Expect(d.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(d.Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods))
			g.Expect(d.Message).To(ContainSubstring("2 gateway pods refused"))
			g.Expect(d.Message).To(ContainSubstring("(" + source.ReasonInvalid + ")"))
			message = d.Message
			g.Expect(gc.Status.Snapshot.ServingReplicas).To(Equal(int32(2)), "the last good snapshot keeps serving")
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "the status shows both pods refusing")
		shown := time.Since(start)
		for _, p := range gatewayPods(faultInstance) {
			r, err := podflags.ParseSnapshotRefusal(p.Annotations[podflags.AnnotationSnapshotRefused])
			Expect(err).NotTo(HaveOccurred(), "pod %s annotation %q", p.Name, p.Annotations[podflags.AnnotationSnapshotRefused])
			Expect(r.Reason).To(Equal(source.ReasonInvalid))
			Expect(len(p.Annotations[podflags.AnnotationSnapshotRefused])).To(BeNumerically("<=", podflags.MaxRefusalMessage+100))
		}
		Eventually(func(g Gomega) {
			var evs eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &evs)).To(Succeed())
			found := false
			for _, e := range evs.Items {
				if e.Regarding.Kind == "GatewayConfig" && e.Regarding.Name == faultInstance && e.Reason == gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods &&
					e.Type == corev1.EventTypeWarning && e.Note == message {
					found = true
				}
			}
			g.Expect(found).To(BeTrue(), "a Warning Event %s with the condition's message", gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods)
		}, 15*time.Second, 200*time.Millisecond).Should(Succeed())

		By("unpausing: the operator writes the snapshot back and the refusal clears")
		update(gc, func() { gc.Spec.Paused = false })
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
			g.Expect(cm.Data[snapshot.ConfigMapKey]).To(Equal(good))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		expectNoRefusal(faultInstance)
		res := stopLoad()
		Expect(res.Failed).To(BeZero(), "%s", res)
		recordFault("corrupt ConfigMap, operator paused", "snapshot truncated by hand, spec.paused until shown", res.Sent, res.Failed,
			fmt.Sprintf("Degraded %s with 2 pods in status after %s, Warning Event; cleared after the repair",
				gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods, shown.Round(time.Millisecond)))
	})
}

// corruptSnapshot overwrites the snapshot key of instance's ConfigMap with
// corrupt(good) and returns the ConfigMap, its key and the good payload.
func corruptSnapshot(instance string, corrupt func(good string) string) (*corev1.ConfigMap, types.NamespacedName, string) {
	cm := &corev1.ConfigMap{}
	cmKey := snapshotKey(instance)
	cm.Namespace, cm.Name = cmKey.Namespace, cmKey.Name
	var good string
	update(cm, func() {
		good = cm.Data[snapshot.ConfigMapKey]
		cm.Data[snapshot.ConfigMapKey] = corrupt(good)
	})
	return cm, cmKey, good
}

// expectNoRefusal waits until no gateway pod of instance shows a refused
// snapshot and the status says so: the refusal is the pods' current state.
func expectNoRefusal(instance string) {
	Eventually(func(g Gomega) {
		gc := &gatewayv1alpha1.GatewayConfig{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
		g.Expect(gc.Status.Snapshot.RefusingReplicas).To(BeZero())
		d := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
		g.Expect(d).NotTo(BeNil())
		g.Expect(d.Status).To(Equal(metav1.ConditionFalse), d.Message)
		for _, p := range gatewayPods(instance) {
			g.Expect(p.Annotations).NotTo(HaveKey(podflags.AnnotationSnapshotRefused), "pod %s", p.Name)
		}
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "the refusal clears once the pods receive the good snapshot")
}
