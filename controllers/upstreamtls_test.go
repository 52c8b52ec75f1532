package controllers

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var _ = Describe("Upstream TLS (proxy-ssl-secret)", func() {
	It("carries the Secret's CA and client certificate in the instance Secret only, follows rotations, and refuses another namespace's Secret", func() {
		for _, ns := range []string{"uptls", "uptls-other"} {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		}
		ca, _ := selfSigned("upstream-ca")
		crt, key := selfSigned("gateway-client")
		upstream := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "uptls", Name: "api-upstream"},
			Data: map[string][]byte{"ca.crt": ca, corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
		Expect(k8sClient.Create(ctx, upstream)).To(Succeed())
		foreignCA, _ := selfSigned("foreign-ca")
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "uptls-other", Name: "their-ca"},
			Data: map[string][]byte{"ca.crt": foreignCA}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "uptls", Name: "api"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "uptls"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "uptls"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "uptls"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "uptls"}}})).To(Succeed())
		ingress := func(name, host, secret string) *networkingv1.Ingress {
			return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "uptls", Name: name, Annotations: map[string]string{
				annotations.NginxPrefix + "backend-protocol": "HTTPS",
				annotations.NginxPrefix + "proxy-ssl-secret": secret,
				annotations.NginxPrefix + "proxy-ssl-verify": "on"}},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("uptls"),
					Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "api", Port: networkingv1.ServiceBackendPort{Name: "https"}}}}}}}}}}}
		}
		Expect(k8sClient.Create(ctx, ingress("api", "api.example.com", "uptls/api-upstream"))).To(Succeed())
		Expect(k8sClient.Create(ctx, ingress("borrower", "borrow.example.com", "uptls-other/their-ca"))).To(Succeed())

		r := &GatewayConfigReconciler{Client: k8sClient, APIReader: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "portico-system", Image: "x"}}
		reconcile := func() (*snapshot.Snapshot, string, *corev1.Secret) {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "uptls"}})
			Expect(err).NotTo(HaveOccurred())
			cm := &corev1.ConfigMap{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "uptls", Name: "portico-uptls-snapshot"}, cm)).To(Succeed())
			snap, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
			Expect(err).NotTo(HaveOccurred())
			sec := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "uptls", Name: "portico-uptls-tls"}, sec)).To(Succeed())
			return snap, cm.Data[snapshot.ConfigMapKey], sec
		}

		snap, payload, sec := reconcile()
		Expect(snap.Hosts).To(HaveLen(1), "only the Ingress using its own namespace's Secret is served")
		route := snap.Hosts[0].Routes[0]
		Expect(route.Upstream.Protocol).To(Equal(snapshot.ProtocolHTTPS))
		Expect(route.Upstream.TLS.Secret).To(Equal("uptls/api-upstream"))
		Expect(payload).NotTo(ContainSubstring("PRIVATE KEY"))
		Expect(payload).NotTo(ContainSubstring(strings.TrimSpace(string(key[40:80]))), "no key bytes in the ConfigMap")
		Expect(snap.ValidateData(sec.Data)).To(Succeed(), "every pinned byte is in the instance Secret")
		ck, kk := snapshot.CertificateDataKeys("uptls/api-upstream")
		Expect(sec.Data[snapshot.CADataKey("uptls/api-upstream")]).To(Equal(ca))
		Expect(sec.Data[ck]).To(Equal(crt))
		Expect(sec.Data[kk]).To(Equal(key))
		Expect(sec.Data).NotTo(HaveKey(snapshot.CADataKey("uptls-other/their-ca")), "another namespace's CA is never copied")
		Eventually(func(g Gomega) {
			var evs eventsList
			g.Expect(k8sClient.List(ctx, &evs.EventList, client.InNamespace("uptls"))).To(Succeed())
			g.Expect(evs.reasonsFor("borrower")).To(ContainElement(EventReasonIngressRejected))
			found := false
			for _, e := range evs.Items {
				found = found || e.Regarding.Name == "borrower" && strings.Contains(e.Note, "another namespace")
			}
			g.Expect(found).To(BeTrue(), "the rejection says why")
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())

		// Rotation: a new CA changes the pin and the instance Secret.
		newCA, _ := selfSigned("upstream-ca-2")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(upstream), upstream)).To(Succeed())
		upstream.Data["ca.crt"] = newCA
		Expect(k8sClient.Update(ctx, upstream)).To(Succeed())
		snap2, _, sec2 := reconcile()
		Expect(snap2.Version).NotTo(Equal(snap.Version))
		Expect(snap2.Hosts[0].Routes[0].Upstream.TLS.CAHash).To(Equal(snapshot.DataHash(newCA)))
		Expect(sec2.Data[snapshot.CADataKey("uptls/api-upstream")]).To(Equal(newCA))

		// The Secret deleted: the Ingress is rejected, never served without its CA.
		Expect(k8sClient.Delete(ctx, upstream)).To(Succeed())
		snap3, _, sec3 := reconcile()
		Expect(snap3.Hosts).To(BeEmpty())
		Expect(sec3.Data).NotTo(HaveKey(snapshot.CADataKey("uptls/api-upstream")))
	})
})
