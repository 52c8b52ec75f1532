package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// faultOperatorSpecs: restarting the operator, or handing leadership from
// one manager to another, changes nothing that is served or owned.
func faultOperatorSpecs() {
	// quiet runs steady load around change and checks that, once the
	// operator has reconciled every instance after it, nothing was written.
	quiet := func(change func()) *loadResult {
		waitServing(faultInstance, 2)
		before := ownedVersions(faultInstance)
		published := publishes(faultInstance)
		stopLoad, _ := load{Workers: 4, Interval: 10 * time.Millisecond, Duration: 60 * time.Second,
			Targets: gatewayPodIPs(faultInstance), Host: steadyHost, Path: "/op/%d"}.start()
		since := reconciles()
		change()
		waitQuiet(since)
		Consistently(func() map[string]string { return ownedVersions(faultInstance) }, 2*time.Second, 250*time.Millisecond).
			Should(Equal(before), "no owned object (nor the GatewayConfig) was written")
		res := stopLoad()
		Expect(publishes(faultInstance)).To(Equal(published), "no snapshot was published")
		Expect(res.Failed).To(BeZero(), "%s", res)
		Expect(res.Sent).To(BeNumerically(">", 100))
		return res
	}

	It("restarts without changing the served snapshot or rewriting an owned object", func() {
		res := quiet(func() {
			By("stopping the manager and starting a new one")
			Expect(manager.stop()).To(Succeed())
			manager = startOperator(nil)
		})
		GinkgoWriter.Printf("operator restart: %s\n", res)
		recordFault("operator restarted", "manager stopped, a new one started", res.Sent, res.Failed,
			"resourceVersions of GatewayConfig, ConfigMap and every owned object unchanged; 0 snapshots published")
	})

	It("hands leadership over between two managers without changing anything", func() {
		Expect(manager.stop()).To(Succeed())
		a := startOperator(quickElection)
		Eventually(a.elected, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the first manager leads")
		b := startOperator(quickElection)
		// Whatever happens, the next specs get one manager without leader
		// election (a lease lost in an API outage would stop it).
		DeferCleanup(func() {
			for _, o := range []*operator{a, b} {
				o.cancel()
				Eventually(o.done, 30*time.Second).Should(BeClosed())
			}
			manager = startOperator(nil)
		})
		Consistently(b.elected, 2*time.Second, 100*time.Millisecond).Should(BeFalse(), "the second manager waits")
		var took time.Duration
		res := quiet(func() {
			By("stopping the leader without releasing its Lease (as a crash would)")
			a.cancel()
			Eventually(a.done, 30*time.Second).Should(BeClosed())
			start := time.Now()
			Eventually(b.elected, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the second manager takes over")
			took = time.Since(start)
		})
		GinkgoWriter.Printf("leader handover in %s: %s\n", took.Round(time.Millisecond), res)

		By("the new leader works: an edit is published and served")
		expectNewIngressServed("after-handover", "handover.faults.example")
		recordFault("leadership handover", "leader (of 2 managers) stopped without releasing the Lease", res.Sent, res.Failed,
			"standby led after "+took.Round(100*time.Millisecond).String()+"; resourceVersions unchanged; 0 snapshots published; later edit served")
	})
}
