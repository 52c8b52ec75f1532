package e2e

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
)

// eastWestSpecs run inside the Ordered north-south container, after its
// specs: they need the instance "public" Listening and serving.
func eastWestSpecs() {
	const (
		ew        = "internal"
		ewClass   = "portico-internal"
		ewHost    = "api.internal.example"
		northSout = "public"
	)

	It("gets its own pods, ClusterIP Service and RBAC, and serves only its own Ingresses", func() {
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{
			ObjectMeta: metav1.ObjectMeta{Name: ew},
			Spec:       gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest, Replicas: ptr.To(int32(1))},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: ewClass},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: ew}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "internal-api"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(ewClass), Rules: []networkingv1.IngressRule{{
				Host: ewHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "echo-b")}}},
			}}},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: ew}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

		svc := &corev1.Service{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + ew}, svc)).To(Succeed())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
		role := &rbacv1.Role{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + ew}, role)).To(Succeed())
		Expect(role.Rules[0].ResourceNames).To(HaveExactElements(append([]string{"portico-" + ew + "-snapshot"},
			render.NewInstance(&gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: ew}}, render.Params{}).PartConfigMaps()...)))

		ewIPs, nsIPs := gatewayPodIPs(ew), gatewayPodIPs(northSout)
		Expect(ewIPs).To(HaveLen(1))
		Expect(nsIPs).NotTo(ContainElement(ewIPs[0]))
		Eventually(func() int { return getStatus(ewIPs[0], ewHost, "/") }, 20*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		code := getStatus(ewIPs[0], host, "/")
		Expect(code).To(Equal(http.StatusNotFound), "north-south routes are not on the east-west pods")
		code = getStatus(nsIPs[0], ewHost, "/")
		Expect(code).To(Equal(http.StatusNotFound), "east-west routes are not on the north-south pods")
	})

	It("is removed whole when its GatewayConfig is deleted, and the other instance keeps serving", func() {
		gc := &gatewayv1alpha1.GatewayConfig{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: ew}, gc)).To(Succeed())
		Expect(k8sClient.Delete(ctx, gc)).To(Succeed())
		key := types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + ew}
		owned := []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}}
		Eventually(func(g Gomega) {
			for _, o := range owned {
				g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key, o))).To(BeTrue(), "%T still exists", o)
			}
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + ew + "-snapshot"}, &corev1.ConfigMap{}))).To(BeTrue())
			g.Expect(gatewayPodIPs(ew)).To(BeEmpty())
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed(), "the garbage collector removes every owned object")

		for _, ip := range gatewayPodIPs(northSout) {
			code, body, _, err := get(http.DefaultClient, ip, "/v2/still")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(HavePrefix("backend-b"))
		}
	})
}
