package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// faultOperatorSpecs: restarting the operator, or handing leadership from
// one manager to another, changes nothing that is served or owned.
func faultOperatorSpecs() {
	steady := func(d time.Duration) load {
		return load{Workers: 4, Interval: 10 * time.Millisecond, Duration: d, Targets: gatewayPodIPs(faultInstance), Host: steadyHost, Path: "/op/%d"}
	}

	It("restarts without changing the served snapshot or rewriting an owned object", func() {
		waitServing(faultInstance, 2)
		before := ownedVersions(faultInstance)
		published := publishes(faultInstance)
		stopLoad, _ := steady(60 * time.Second).start()

		By("stopping the manager and starting a new one")
		manager.stop()
		since := reconciles()
		manager = startOperator(false)
		waitQuiet(since)
		Consistently(func() map[string]string { return ownedVersions(faultInstance) }, 2*time.Second, 250*time.Millisecond).
			Should(Equal(before), "no owned object (nor the GatewayConfig) was written")
		res := stopLoad()
		GinkgoWriter.Printf("operator restart: %s\n", res)
		Expect(publishes(faultInstance)).To(Equal(published), "no snapshot was published")
		Expect(res.Failed).To(BeZero(), "%s", res)
		Expect(res.Sent).To(BeNumerically(">", 100))
		recordFault("operator restarted", "manager stopped, a new one started", res.Sent, res.Failed,
			"resourceVersions of GatewayConfig, ConfigMap and every owned object unchanged; 0 snapshots published")
	})

	It("hands leadership over between two managers without changing anything", func() {
		manager.stop()
		a := startOperator(true)
		Eventually(a.elected, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the first manager leads")
		b := startOperator(true)
		Consistently(b.elected, 2*time.Second, 100*time.Millisecond).Should(BeFalse(), "the second manager waits")
		waitServing(faultInstance, 2)
		before := ownedVersions(faultInstance)
		published := publishes(faultInstance)
		stopLoad, _ := steady(60 * time.Second).start()

		By("stopping the leader without releasing its Lease (as a crash would)")
		a.cancel()
		Eventually(a.done, 30*time.Second).Should(BeClosed())
		since := reconciles()
		start := time.Now()
		Eventually(b.elected, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the second manager takes over")
		took := time.Since(start)
		waitQuiet(since)
		Consistently(func() map[string]string { return ownedVersions(faultInstance) }, 2*time.Second, 250*time.Millisecond).
			Should(Equal(before), "the new leader wrote no owned object")
		res := stopLoad()
		GinkgoWriter.Printf("leader handover in %s: %s\n", took.Round(time.Millisecond), res)
		Expect(publishes(faultInstance)).To(Equal(published), "no snapshot was published")
		Expect(res.Failed).To(BeZero(), "%s", res)

		By("the new leader works: an edit is published and served")
		faultIngress("after-handover", "handover.faults.example", nil, prefixPath("/", "other"))
		for _, ip := range gatewayPodIPs(faultInstance) {
			Eventually(func() string { _, b := getBody(ip, "handover.faults.example", "/x"); return b }, 30*time.Second, 200*time.Millisecond).
				Should(HavePrefix("other "), "pod %s", ip)
		}
		b.cancel()
		Eventually(b.done, 30*time.Second).Should(BeClosed())
		manager = startOperator(false)
		recordFault("leadership handover", "leader (of 2 managers) stopped without releasing the Lease", res.Sent, res.Failed,
			"standby led after "+took.Round(100*time.Millisecond).String()+"; resourceVersions unchanged; 0 snapshots published; later edit served")
	})
}
