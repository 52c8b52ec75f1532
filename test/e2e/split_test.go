package e2e

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// e2eSnapshotPartSize is the operator's snapshot part size in this suite
// (render.Params.SnapshotPartSize): small enough that the split instance
// below needs several ConfigMaps, large enough that the small snapshots of
// the other specs stay in one.
const e2eSnapshotPartSize = 16 << 10

// A snapshot above the part size is written over several ConfigMaps; real
// gatewaypod processes, with only their Role's rights, fetch and assemble it.
var _ = Describe("A snapshot split over several ConfigMaps", Ordered, func() {
	const (
		instance = "split"
		ns       = "split"
		count    = 200
		backend  = "10.244.2.40"
	)
	head := "portico-" + instance + "-snapshot"
	hostOf := func(i int) string { return fmt.Sprintf("app-%03d.split.example", i) }

	// parts returns the part ConfigMaps that exist, and the head's version.
	parts := func(g Gomega) (names []string, version string) {
		cm := &corev1.ConfigMap{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: head}, cm)).To(Succeed())
		for i := 1; i < snapshot.MaxParts; i++ {
			err := k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: snapshot.PartName(head, i)}, &corev1.ConfigMap{})
			if apierrors.IsNotFound(err) {
				continue
			}
			g.Expect(err).NotTo(HaveOccurred())
			names = append(names, snapshot.PartName(head, i))
		}
		return names, cm.Annotations[podflags.AnnotationSnapshotVersion]
	}
	// servedBy asks the instance's one pod for hostOf(i).
	servedBy := func(ip string, i int) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ip+":8080/", nil)
		Expect(err).NotTo(HaveOccurred())
		req.Host = hostOf(i)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b := make([]byte, 256)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
	listening := func(g Gomega) *gatewayv1alpha1.GatewayConfig {
		gc := &gatewayv1alpha1.GatewayConfig{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
		g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
		return gc
	}

	It("is assembled and served by the gateway pods, and its parts are pruned when it shrinks", func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		echoBackend("backend-split", backend+":9000")
		Expect(k8sClient.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "echo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{backend}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest, Replicas: ptr.To(int32(1)),
				IngressNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}}})).To(Succeed())
		for i := range count { // bounded: exactly count creates
			Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%03d", i)},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(instance), Rules: []networkingv1.IngressRule{{
					Host: hostOf(i), IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "echo", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}},
				}}},
			})).To(Succeed())
		}

		By("the pod serves the split snapshot: Listening on its version, every host routed")
		var (
			splitVersion string
			configMaps   int
		)
		Eventually(func(g Gomega) {
			gc := listening(g)
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(count)))
			names, version := parts(g)
			g.Expect(len(names)).To(BeNumerically(">=", 2), "a %d-Ingress snapshot needs 3 or more ConfigMaps of %d bytes", count, e2eSnapshotPartSize)
			g.Expect(gc.Status.Snapshot.Version).To(Equal(version))
			ips := gatewayPodIPs(instance)
			g.Expect(ips).To(HaveLen(1))
			// Only a snapshot with all count Ingresses has the last one.
			for _, i := range []int{0, count / 2, count - 1} { // first, middle and last chunk
				code, body := servedBy(ips[0], i)
				g.Expect(code).To(Equal(http.StatusOK), body)
				g.Expect(body).To(HavePrefix("backend-split " + hostOf(i)))
			}
			splitVersion = version
			configMaps = len(names) + 1
		}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
		AddReportEntry("snapshot ConfigMaps for 200 Ingresses", configMaps)
		ips := gatewayPodIPs(instance)

		By("shrinking to a few Ingresses: one ConfigMap again, the parts deleted, the pod follows")
		for i := 5; i < count; i++ { // bounded: count-5 deletes
			Expect(k8sClient.Delete(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%03d", i)}})).To(Succeed())
		}
		// Deletes are published in a few bounded writes; wait for the last.
		Eventually(func(g Gomega) {
			gc := listening(g)
			names, version := parts(g)
			g.Expect(names).To(BeEmpty())
			g.Expect(version).NotTo(Equal(splitVersion))
			g.Expect(gc.Status.Snapshot.Version).To(Equal(version))
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: head}, cm)).To(Succeed())
			g.Expect(cm.Data).NotTo(HaveKey(snapshot.ManifestKey))
			s, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Hosts).To(HaveLen(5))
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
		Eventually(func() int { code, _ := servedBy(ips[0], count-1); return code }, 20*time.Second, 200*time.Millisecond).
			Should(Equal(http.StatusNotFound), "a deleted Ingress's host")
		code, body := servedBy(ips[0], 1)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(HavePrefix("backend-split " + hostOf(1)))
	})
})
