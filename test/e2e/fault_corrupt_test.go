package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

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

			cm := &corev1.ConfigMap{}
			cmKey := snapshotKey(faultInstance)
			cm.Namespace, cm.Name = cmKey.Namespace, cmKey.Name
			var good string
			update(cm, func() {
				good = cm.Data[snapshot.ConfigMapKey]
				cm.Data[snapshot.ConfigMapKey] = tc.corrupt(good)
			})
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
			recordFault("corrupt ConfigMap: "+tc.name, "snapshot key overwritten by hand, operator running", res.Sent, res.Failed,
				fmt.Sprintf("refused by both pods (%s); repaired in %s; status %s, version %s", source.MetricSnapshotRejected,
					repaired.Round(time.Millisecond), gc.Status.Phase, gc.Status.Snapshot.Version))
		})
	}
}
