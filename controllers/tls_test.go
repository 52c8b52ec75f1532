package controllers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
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
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func selfSigned(host string) (crt, key []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	Expect(err).NotTo(HaveOccurred())
	kb, err := x509.MarshalECPrivateKey(k)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

var _ = Describe("TLS material and the instance default backend", func() {
	It("copies key material into the instance Secret only, and resolves the default backend", func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "secure"}}))).To(Succeed())
		crt, key := selfSigned("secure.example.com")
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "secure", Name: "site-tls"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}})).To(Succeed())
		dcrt, dkey := selfSigned("fallback.invalid")
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "secure", Name: "default-tls"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: dcrt, corev1.TLSPrivateKeyKey: dkey}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "secure", Name: "fallback"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "secure"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "secure", Defaults: &gatewayv1alpha1.DefaultsSpec{
				TLSCertificate: &gatewayv1alpha1.SecretRef{Namespace: "secure", Name: "default-tls"},
				DefaultBackend: &gatewayv1alpha1.DefaultBackendRef{Namespace: "secure",
					Service: networkingv1.IngressServiceBackend{Name: "fallback", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "secure"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "secure"}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "secure", Name: "site"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("secure"),
				TLS: []networkingv1.IngressTLS{{Hosts: []string{"secure.example.com"}, SecretName: "site-tls"}},
				Rules: []networkingv1.IngressRule{{Host: "secure.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "fallback", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}})).To(Succeed())

		r := &GatewayConfigReconciler{Client: k8sClient, APIReader: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "portico-system", Image: "x"}}
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "secure"}})
		Expect(err).NotTo(HaveOccurred())

		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "secure", Name: "portico-secure-snapshot"}, cm)).To(Succeed())
		payload := cm.Data[snapshot.ConfigMapKey]
		Expect(payload).NotTo(ContainSubstring("PRIVATE KEY"))
		Expect(payload).NotTo(ContainSubstring(strings.TrimSpace(string(key[40:80]))), "no key bytes in the ConfigMap")
		snap, err := snapshot.Decode([]byte(payload))
		Expect(err).NotTo(HaveOccurred())
		Expect(snap.Certificates).To(HaveLen(2))
		Expect(snap.Certificates[0].Secret).To(Equal("secure/default-tls"))
		Expect(snap.Certificates[0].Default).To(BeTrue(), "the instance default certificate comes first")
		Expect(snap.Certificates[1].Hosts).To(Equal([]string{"secure.example.com"}))
		snap.Certificates = snap.Certificates[1:]
		Expect(snap.DefaultBackend).NotTo(BeNil())
		Expect(snap.DefaultBackend.Name).To(ContainSubstring("secure/fallback"))

		sec := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "secure", Name: "portico-secure-tls"}, sec)).To(Succeed())
		crtKey, keyKey := snapshot.CertificateDataKeys(snap.Certificates[0].Secret)
		Expect(sec.Data[crtKey]).To(Equal(crt))
		Expect(sec.Data[keyKey]).To(Equal(key))
		Expect(snapshot.CertificateHash(sec.Data[crtKey], sec.Data[keyKey])).To(Equal(snap.Certificates[0].Hash))
	})
})
