package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// apiOutage is how long the API server stays down (issue #7).
const apiOutage = 30 * time.Second

// faultAPIServerSpecs: the API server stops for 30 s under load.
func faultAPIServerSpecs() {
	It("keeps serving the last snapshot while the API server is down, and the operator recovers without a restart or a needless write", func() {
		By("running the operator with leader election as cmd/main.go does")
		Expect(manager.stop()).To(Succeed())
		manager = startOperator(productionElection)
		DeferCleanup(func() { // the next specs get a manager without leader election
			_ = manager.stop() // checked by the spec: it must not have stopped
			manager = startOperator(nil)
		})
		Eventually(manager.elected, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
		waitServing(faultInstance, 2)
		before := ownedVersions(faultInstance)
		published := publishes(faultInstance)
		restarts := pods.Restarts()
		op := manager
		stopLoad, _ := load{Workers: 4, Interval: 20 * time.Millisecond, Duration: apiOutage + 60*time.Second,
			Targets: gatewayPodIPs(faultInstance), Host: steadyHost, Path: "/outage/%d"}.start()
		time.Sleep(time.Second)

		By("stopping kube-apiserver for 30 s; etcd keeps the data")
		Expect(cluster.StopAPIServer()).To(Succeed())
		DeferCleanup(func() { _ = cluster.StartAPIServer(ctx) }) // if this spec fails before the restart
		down := time.Now()
		time.Sleep(apiOutage) // the fault itself
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		Expect(cluster.StartAPIServer(sctx)).To(Succeed())
		outage := time.Since(down)
		back := time.Now()
		time.Sleep(time.Second)
		res := stopLoad()
		GinkgoWriter.Printf("API outage of %s: %s\n", outage.Round(time.Millisecond), res)
		Expect(res.Failed).To(BeZero(), "%s", res)
		Expect(pods.Restarts()).To(Equal(restarts), "no gateway process restarted")

		By("the operator is the same manager and writes nothing for an unchanged snapshot")
		Expect(op.running()).To(BeTrue(), "the manager did not stop (nor lose its lease)")
		Expect(op.elected()).To(BeTrue())
		Expect(manager).To(BeIdenticalTo(op))
		since := reconciles()
		gc := &gatewayv1alpha1.GatewayConfig{}
		gc.Name = faultInstance
		update(gc, func() { // an annotation wakes the controller without changing the snapshot
			if gc.Annotations == nil {
				gc.Annotations = map[string]string{}
			}
			gc.Annotations["faults.portico.dev/poke"] = fmt.Sprint(time.Now().UnixNano())
		})
		waitQuiet(since)
		caughtUp := time.Since(back)
		after := ownedVersions(faultInstance)
		delete(before, "GatewayConfig/"+faultInstance) // poked on purpose
		delete(after, "GatewayConfig/"+faultInstance)
		Expect(after).To(Equal(before), "no owned object was rewritten after the outage")
		Expect(publishes(faultInstance)).To(Equal(published), "the unchanged snapshot was not republished")

		By("the operator and the pods see changes again")
		expectNewIngressServed("after-outage", "outage.faults.example")
		waitServing(faultInstance, 2)
		Consistently(func() float64 { return publishes(faultInstance) }, 3*time.Second, 250*time.Millisecond).
			Should(Equal(published+1), "the edit is one new snapshot, published once (the caches may lag behind the operator's own writes after the outage)")
		recordFault("API server stopped", fmt.Sprintf("kube-apiserver down %s (etcd up)", outage.Round(100*time.Millisecond)), res.Sent, res.Failed,
			fmt.Sprintf("same manager, still leader; reconciling again %s after the restart; owned resourceVersions unchanged; 0 snapshots published; a later edit served and published once",
				caughtUp.Round(100*time.Millisecond)))
	})
}
