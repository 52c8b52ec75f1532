package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/gatewaypod/source"
)

// corruptSnapshotSpecs run inside the Ordered north-south container: a
// snapshot ConfigMap corrupted by hand is refused by every pod, which keep
// serving the last good snapshot, and the operator repairs it.
func corruptSnapshotSpecs() {
	const instance = "public"
	cmKey := types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + instance + "-snapshot"}

	setPaused := func(paused bool) {
		gc := &gatewayv1alpha1.GatewayConfig{}
		gc.Name = instance
		update(gc, func() { gc.Spec.Paused = paused })
	}
	rejected := func(ip string) float64 {
		resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", ip, podflags.DefaultHealthPort))
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var total float64
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, source.MetricSnapshotRejected) {
				var v float64
				_, _ = fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
				total += v
			}
		}
		return total
	}

	It("refuses a corrupt snapshot, keeps serving the last good one, and the operator repairs it", func() {
		// Paused, the operator leaves the ConfigMap alone, so the pods
		// really see the corrupt payload.
		setPaused(true)
		ips := gatewayPodIPs(instance)
		before := map[string]float64{}
		for _, ip := range ips {
			before[ip] = rejected(ip)
		}
		cm := &corev1.ConfigMap{}
		cm.Namespace, cm.Name = cmKey.Namespace, cmKey.Name
		var good string
		update(cm, func() {
			good = cm.Data[snapshot.ConfigMapKey]
			cm.Data[snapshot.ConfigMapKey] = good[:len(good)/2] // truncated
		})

		for _, ip := range ips {
			Eventually(func() float64 { return rejected(ip) }, 15*time.Second, 200*time.Millisecond).
				Should(BeNumerically(">", before[ip]), "pod %s counts the refused snapshot", ip)
		}
		sent, failed := 0, 0
		for i := 0; i < 50; i++ { // bounded: 50 requests per pod
			for _, ip := range ips {
				sent++
				code, body, _, err := get(http.DefaultClient, ip, "/v2/after-corruption")
				if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "backend-b") {
					failed++
				}
			}
		}
		Expect(failed).To(BeZero(), "%d of %d requests failed while the ConfigMap was corrupt", failed, sent)

		By("unpausing: the operator writes the snapshot back")
		setPaused(false)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
			g.Expect(cm.Data[snapshot.ConfigMapKey]).To(Equal(good))
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	})
}
