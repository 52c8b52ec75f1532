package e2e

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// The east-west instance of the fault suite and its class.
const (
	faultEW      = "faults-ew"
	faultEWClass = "portico-faults-ew"
	ewHost       = "ew.faults.example"
)

// faultEastWestSpecs: saturating the east-west instance leaves the
// north-south instance's latency alone (separate processes).
func faultEastWestSpecs() {
	It("keeps north-south latency when the east-west instance is saturated", func() {
		createInstance(faultEW, faultEWClass, gatewayv1alpha1.TrafficEastWest, 1)
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: faultNS, Name: "ew"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(faultEWClass), Rules: []networkingv1.IngressRule{{
				Host: ewHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "steady")}}},
			}}},
		}
		Expect(k8sClient.Create(ctx, ing)).To(Succeed())
		waitServing(faultEW, 1)
		ewIPs, nsIPs := gatewayPodIPs(faultEW), gatewayPodIPs(faultInstance)
		Expect(ewIPs).To(HaveLen(1))
		Eventually(func() int { return getStatus(ewIPs[0], ewHost, "/") }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		ewPod := gatewayPods(faultEW)[0]
		ewPID := pods.PID(ewPod.Namespace, ewPod.Name)
		for _, p := range gatewayPods(faultInstance) {
			Expect(pods.PID(p.Namespace, p.Name)).NotTo(Equal(ewPID), "a separate process per instance")
		}

		probe := load{Workers: 1, Interval: 20 * time.Millisecond, Duration: 4 * time.Second, Targets: nsIPs, Host: steadyHost, Path: "/probe/%d"}
		By("north-south latency alone")
		alone := probe.run()
		By("north-south latency while 8 clients saturate the east-west pod")
		stopSat, _ := load{Workers: 8, Duration: 60 * time.Second, Targets: ewIPs, Host: ewHost, Path: "/sat/%d"}.start()
		time.Sleep(time.Second) // let it saturate
		during := probe.run()
		sat := stopSat()
		GinkgoWriter.Printf("north-south alone: %s\nnorth-south during: %s\neast-west saturating: %s\n", alone, during, sat)
		Expect(alone.Failed).To(BeZero())
		Expect(during.Failed).To(BeZero(), "%s", during)
		Expect(sat.Sent).To(BeNumerically(">", 10*during.Sent), "the east-west pod took the flood")
		// The instances share this machine's 2 cores (the fake pods have no
		// CPU limits) with the load generator and other tests, so some
		// slowdown is CPU contention; the bounds are what a client notices.
		// p99 of 200 probes is their second slowest: one scheduling hiccup of
		// a busy CI machine (seen: 162 ms) must not fail it, a queue behind
		// the flood (seconds) must.
		Expect(during.Quantile(0.5)).To(BeNumerically("<", 20*time.Millisecond), "north-south p50 during saturation")
		Expect(during.Quantile(0.99)).To(BeNumerically("<", max(10*alone.Quantile(0.99), 300*time.Millisecond)), "north-south p99 during saturation")
		recordFault("east-west saturated", fmt.Sprintf("8 clients flat out on the east-west pod (%.0f req/s)", float64(sat.Sent)/sat.Elapsed.Seconds()),
			alone.Sent+during.Sent, alone.Failed+during.Failed,
			fmt.Sprintf("north-south p50/p99 alone %s/%s, during %s/%s; east-west p50 %s",
				alone.Quantile(0.5).Round(10*time.Microsecond), alone.Quantile(0.99).Round(10*time.Microsecond),
				during.Quantile(0.5).Round(10*time.Microsecond), during.Quantile(0.99).Round(10*time.Microsecond),
				sat.Quantile(0.5).Round(10*time.Microsecond)))
	})
}
