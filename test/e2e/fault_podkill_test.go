package e2e

import (
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// faultPodKillSpecs: with two replicas, a client that retries once on the
// other pod loses nothing when one gateway process is killed mid-load.
// (The graceful drain on SIGTERM is proven by cmd/gatewaypod's
// TestSIGTERMDrainsInFlightRequests.)
func faultPodKillSpecs() {
	It("loses no request of a retrying client when one of two gateway pods is SIGKILLed", func() {
		gws := gatewayPods(faultInstance)
		Expect(gws).To(HaveLen(2))
		victim := gws[0]
		restarts := pods.Restarts()
		oldPID := pods.PID(victim.Namespace, victim.Name)
		Expect(oldPID).NotTo(BeZero())

		l := load{Workers: 8, Interval: 5 * time.Millisecond, Duration: 6 * time.Second, Targets: gatewayPodIPs(faultInstance),
			Host: steadyHost, Path: "/kill/%d", RetryOnce: true, Timeout: 3 * time.Second}
		stopLoad, done := l.start()
		time.Sleep(1500 * time.Millisecond) // steady traffic before the fault
		_, err := pods.Signal(victim.Namespace, victim.Name, syscall.SIGKILL)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int { return pods.PID(victim.Namespace, victim.Name) }, 20*time.Second, 50*time.Millisecond).
			ShouldNot(Or(BeZero(), Equal(oldPID)), "the runner restarts the killed process, as a kubelet would")
		<-done
		res := stopLoad()
		GinkgoWriter.Printf("pod kill: %s\n", res)
		Expect(pods.Restarts()).To(Equal(restarts+1), "exactly one process died")
		Expect(res.Failed).To(BeZero(), "%s", res)
		Expect(res.Retried).To(BeNumerically(">", 0), "the kill was felt: some first attempts failed")
		Eventually(func() int { return getStatus(victim.Status.PodIP, steadyHost, "/") }, 20*time.Second, 200*time.Millisecond).
			Should(Equal(200), "the restarted pod serves again")
		recordFault("gateway pod killed", "SIGKILL to 1 of 2 gateway processes mid-load; client retries once on the other pod",
			res.Sent, res.Failed, "retried "+itoa(res.Retried)+" requests; process restarted; 0 lost")
	})
}
