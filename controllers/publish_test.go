package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

var _ = Describe("Snapshot publishing", func() {
	It("writes at most once per interval per instance and folds a burst into one write", func() {
		clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
		r := &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "portico-system", Image: "x"}, MinPublishInterval: time.Second, Clock: clk}
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "burst"}}))).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "bursty"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "burst"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "bursty"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "bursty"}}})).To(Succeed())
		reconcile := func() ctrl.Result {
			res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "bursty"}})
			Expect(err).NotTo(HaveOccurred())
			return res
		}
		published := func() string {
			cm := &corev1.ConfigMap{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "burst", Name: "portico-bursty-snapshot"}, cm)).To(Succeed())
			return cm.Annotations[podflags.AnnotationSnapshotVersion]
		}
		addIngress := func(name string) {
			Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: "burst", Name: name},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("bursty"), Rules: []networkingv1.IngressRule{{Host: name + ".example.com",
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
					}}}}}}},
			})).To(Succeed())
		}

		Expect(reconcile().RequeueAfter).To(BeZero())
		first := published()
		clk.SetTime(clk.Now().Add(2 * time.Second))
		addIngress("a") // a change after a quiet interval goes out at once
		Expect(reconcile().RequeueAfter).To(BeZero())
		second := published()
		Expect(second).NotTo(Equal(first))

		clk.SetTime(clk.Now().Add(100 * time.Millisecond))
		addIngress("b")
		res := reconcile()
		Expect(res.RequeueAfter).To(Equal(900 * time.Millisecond))
		Expect(published()).To(Equal(second), "held back inside the interval")
		addIngress("c")
		Expect(reconcile().RequeueAfter).To(BeNumerically(">", 0))
		Expect(published()).To(Equal(second))
		// While held back, status describes the published snapshot: its
		// version and its one Ingress, not the three already compiled
		// (Listening with 3 would claim pods serve b and c).
		held := &gatewayv1alpha1.GatewayConfig{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: "bursty"}, held)).To(Succeed())
		Expect(held.Status.Snapshot.Version).To(Equal(second))
		Expect(held.Status.Snapshot.AcceptedIngresses).To(Equal(int32(1)), "only a is published")

		clk.SetTime(clk.Now().Add(time.Second))
		Expect(reconcile().RequeueAfter).To(BeZero())
		Expect(published()).NotTo(Equal(second))
		gc := &gatewayv1alpha1.GatewayConfig{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: "bursty"}, gc)).To(Succeed())
		Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(3)), "b and c arrive in one write")
		Expect(gc.Status.Snapshot.Version).To(Equal(published()))
	})
})
