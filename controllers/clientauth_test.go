package controllers

import (
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
	"github.com/portico-dev/portico/controllers/compile"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var _ = Describe("Client certificates, error pages and certificate checks", func() {
	It("ships the CA in the instance Secret only, refuses another namespace's CA, and warns about a certificate for other hosts", func() {
		for _, ns := range []string{"mtls", "mtls-other"} {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		}
		caPEM, _ := selfSigned("client CA")
		for _, ns := range []string{"mtls", "mtls-other"} {
			Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "client-ca"},
				Data: map[string][]byte{"ca.crt": caPEM}})).To(Succeed())
		}
		crt, key := selfSigned("elsewhere.example.com")
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mtls", Name: "site-tls"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}})).To(Succeed())
		for _, name := range []string{"web", "pages"} {
			Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "mtls", Name: name},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		}
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "mtls"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "mtls"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "mtls"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "mtls"}}})).To(Succeed())
		ing := func(ns, name, host string, tls bool, kv ...string) *networkingv1.Ingress {
			i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("mtls"),
					Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
			if tls {
				i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "site-tls"}}
			}
			for j := 0; j+1 < len(kv); j += 2 {
				i.Annotations[annotations.NginxPrefix+kv[j]] = kv[j+1]
			}
			Expect(k8sClient.Create(ctx, i)).To(Succeed())
			return i
		}
		ing("mtls", "site", "secure.example.com", true, "auth-tls-secret", "mtls/client-ca", "auth-tls-verify-client", "optional",
			"custom-http-errors", "503", "default-backend", "pages")
		ing("mtls-other", "borrower", "borrow.example.com", false, "auth-tls-secret", "mtls/client-ca")

		r := &GatewayConfigReconciler{Client: k8sClient, APIReader: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "portico-system", Image: "x"}}
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "mtls"}})
		Expect(err).NotTo(HaveOccurred())

		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "mtls", Name: "portico-mtls-snapshot"}, cm)).To(Succeed())
		payload := cm.Data[snapshot.ConfigMapKey]
		Expect(payload).NotTo(ContainSubstring("BEGIN CERTIFICATE"), "no CA bytes in the ConfigMap")
		snap, err := snapshot.Decode([]byte(payload))
		Expect(err).NotTo(HaveOccurred())
		Expect(snap.Hosts).To(HaveLen(1), "the borrower is left out")
		vh := snap.Hosts[0]
		Expect(vh.Host).To(Equal("secure.example.com"))
		Expect(vh.ClientAuth).To(Equal(&snapshot.ClientAuth{CASecret: "mtls/client-ca", CAHash: snapshot.DataHash(caPEM), Verify: "optional", Depth: 1}))
		Expect(vh.Routes[0].CustomErrors).NotTo(BeNil())
		Expect(vh.Routes[0].CustomErrors.Backend.Name).To(Equal("mtls/pages:80"))

		sec := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "mtls", Name: "portico-mtls-tls"}, sec)).To(Succeed())
		Expect(sec.Data[snapshot.CADataKey("mtls/client-ca")]).To(Equal(caPEM))
		Expect(sec.Data).NotTo(HaveKey(snapshot.CADataKey("mtls-other/client-ca")))

		Eventually(func(g Gomega) {
			var evs eventsList
			g.Expect(k8sClient.List(ctx, &evs.EventList, client.InNamespace("mtls-other"))).To(Succeed())
			g.Expect(evs.reasonsFor("borrower")).To(ContainElement(EventReasonIngressRejected))
			evs = eventsList{}
			g.Expect(k8sClient.List(ctx, &evs.EventList, client.InNamespace("mtls"))).To(Succeed())
			g.Expect(evs.reasonsFor("site")).To(ContainElement(compile.ReasonTLSCertificateHostMismatch))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})
})
