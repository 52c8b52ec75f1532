package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// fault500Specs: one broken Ingress among 500 is rejected alone. They go to
// the east-west instance of faultEastWestSpecs, which runs before.
func fault500Specs() {
	It("serves the 499 good Ingresses and counts 1 rejected", func() {
		const count = 500
		const broken = 250
		hostOf := func(i int) string { return fmt.Sprintf("site-%03d.faults.example", i) }
		start := time.Now()
		for i := range count {
			ing := &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: faultNS, Name: fmt.Sprintf("site-%03d", i)},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(faultEWClass), Rules: []networkingv1.IngressRule{{
					Host: hostOf(i), IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "steady")}}},
				}}},
			}
			if i == broken {
				ing.Annotations = map[string]string{"nginx.ingress.kubernetes.io/proxy-read-timeout": "soon"}
			}
			Expect(k8sClient.Create(ctx, ing)).To(Succeed())
		}
		gc := &gatewayv1alpha1.GatewayConfig{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: faultEW}, gc)).To(Succeed())
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(count-1+1)), "499 sites and the ew Ingress")
			g.Expect(gc.Status.Snapshot.RejectedIngresses).To(Equal(int32(1)))
		}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
		waitServing(faultEW, 1)
		settled := time.Since(start)

		ip := gatewayPodIPs(faultEW)[0]
		sent, failed := 0, 0
		for i := range count { // bounded: one request per Ingress
			if i == broken {
				continue
			}
			sent++
			if code, body := getBody(ip, hostOf(i), "/"); code != http.StatusOK || !strings.HasPrefix(body, "steady-") {
				failed++
			}
		}
		code := getStatus(ip, hostOf(broken), "/")
		GinkgoWriter.Printf("500 Ingresses, 1 broken: settled in %s; %d of %d good hosts failed; broken host -> %d\n",
			settled.Round(time.Millisecond), failed, sent, code)
		Expect(failed).To(BeZero())
		Expect(code).To(Equal(http.StatusNotFound), "the broken Ingress is not served")
		recordFault("1 broken Ingress among 500", "proxy-read-timeout: \"soon\" on 1 of 500 Ingresses", sent, failed,
			fmt.Sprintf("status accepted %d, rejected %d; 499 hosts served, broken host 404; settled in %s",
				gc.Status.Snapshot.AcceptedIngresses, gc.Status.Snapshot.RejectedIngresses, settled.Round(100*time.Millisecond)))
	})
}
