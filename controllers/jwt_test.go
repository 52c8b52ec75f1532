package controllers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"

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

func publicKeyPEM() []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

var _ = Describe("JWT keys", func() {
	It("ships the keys of a same-namespace jwt-secret in the instance Secret and refuses another namespace's", func() {
		for _, ns := range []string{"jwt", "jwt-other"} {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		}
		pemKey, foreign := publicKeyPEM(), publicKeyPEM()
		keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "jwt", Name: "keys"}, Data: map[string][]byte{"key.pem": pemKey}}
		Expect(k8sClient.Create(ctx, keys)).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "jwt-other", Name: "keys"},
			Data: map[string][]byte{"key.pem": foreign}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "jwt", Name: "api"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "jwt"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "jwt"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "jwt"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "jwt"}}})).To(Succeed())
		ingress := func(name, host, secretRef string) *networkingv1.Ingress {
			return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "jwt", Name: name,
				Annotations: map[string]string{"portico.dev/jwt-secret": secretRef, "portico.dev/jwt-audiences": "api"}},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("jwt"),
					Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "api", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
		}
		Expect(k8sClient.Create(ctx, ingress("own", "own.example.com", "keys"))).To(Succeed())
		Expect(k8sClient.Create(ctx, ingress("borrow", "borrow.example.com", "jwt-other/keys"))).To(Succeed())

		r := &GatewayConfigReconciler{Client: k8sClient, APIReader: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "portico-system", Image: "x"}}
		reconcileAndRead := func() (*snapshot.Snapshot, *corev1.Secret) {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "jwt"}})
			Expect(err).NotTo(HaveOccurred())
			cm := &corev1.ConfigMap{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "jwt", Name: "portico-jwt-snapshot"}, cm)).To(Succeed())
			snap, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
			Expect(err).NotTo(HaveOccurred())
			sec := &corev1.Secret{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "jwt", Name: "portico-jwt-tls"}, sec)).To(Succeed())
			return snap, sec
		}
		snap, sec := reconcileAndRead()
		Expect(snap.Hosts).To(HaveLen(1), "the Ingress naming another namespace's Secret is rejected")
		Expect(snap.Hosts[0].Host).To(Equal("own.example.com"))
		j := snap.Hosts[0].Routes[0].JWT
		Expect(j).NotTo(BeNil())
		Expect(j.Secret).To(Equal("jwt/keys"))
		Expect(j.Audiences).To(Equal([]string{"api"}))
		Expect(sec.Data).To(HaveKeyWithValue(snapshot.JWTDataKey("jwt/keys"), pemKey))
		Expect(sec.Data).NotTo(HaveKey(snapshot.JWTDataKey("jwt-other/keys")))
		Expect(snapshot.DataHash(pemKey)).To(Equal(j.Hash))

		By("rotating the key in the source Secret")
		rotated := publicKeyPEM()
		keys.Data = map[string][]byte{"key.pem": rotated}
		Expect(k8sClient.Update(ctx, keys)).To(Succeed())
		snap, sec = reconcileAndRead()
		Expect(sec.Data).To(HaveKeyWithValue(snapshot.JWTDataKey("jwt/keys"), rotated))
		Expect(snap.Hosts[0].Routes[0].JWT.Hash).To(Equal(snapshot.DataHash(rotated)))
	})
})
