package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var _ = Describe("GatewayConfig lifecycle", func() {
	var r *GatewayConfigReconciler
	params := render.Params{Namespace: "portico-system", Image: "example.com/portico:test"}

	ensureNS := func(name string, labels map[string]string) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, ns))).To(Succeed())
	}
	reconcileOnce := func(name string) {
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		Expect(err).NotTo(HaveOccurred())
	}
	getGC := func(name string) *gatewayv1alpha1.GatewayConfig {
		gc := &gatewayv1alpha1.GatewayConfig{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: name}, gc)).To(Succeed())
		return gc
	}
	create := func(name string, spec gatewayv1alpha1.GatewayConfigSpec) *gatewayv1alpha1.GatewayConfig {
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		return gc
	}
	condition := func(name, typ string) *metav1.Condition {
		return meta.FindStatusCondition(getGC(name).Status.Conditions, typ)
	}

	BeforeEach(func() {
		r = &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder, Params: params}
		ensureNS("portico-system", nil)
	})

	It("fails on a name another owner holds, leaves its neighbour alone, and recovers", func() {
		ensureNS("shared", nil)
		healthy := create("healthy", gatewayv1alpha1.GatewayConfigSpec{Namespace: "shared"})
		reconcileOnce("healthy")
		healthyDep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "shared", Name: "portico-healthy"}, healthyDep)).To(Succeed())
		healthyStatus := getGC("healthy").Status

		squatter := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shared", Name: "portico-clash"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 1}}}}
		Expect(k8sClient.Create(ctx, squatter)).To(Succeed())
		create("clash", gatewayv1alpha1.GatewayConfigSpec{Namespace: "shared"})
		reconcileOnce("clash")
		gc := getGC("clash")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseFailed))
		Expect(gc.Status.Message).To(Equal("Service shared/portico-clash already exists and is not owned by GatewayConfig clash (owner: none); delete or rename it, or use another GatewayConfig name"))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, types.NamespacedName{Namespace: "shared", Name: "portico-clash"}, &appsv1.Deployment{}))).
			To(BeTrue(), "nothing is written while a name is taken")
		got := &corev1.Service{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(squatter), got)).To(Succeed())
		Expect(got.Spec.Ports[0].Port).To(Equal(int32(1)), "the other owner's object is untouched")

		By("the healthy instance did not notice")
		reconcileOnce("healthy")
		Expect(getGC("healthy").Status).To(Equal(healthyStatus))
		after := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(healthyDep), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(healthyDep.ResourceVersion))
		Expect(healthy.UID).NotTo(BeEmpty())

		By("recovering by itself once the cause is gone")
		Expect(k8sClient.Delete(ctx, squatter)).To(Succeed())
		reconcileOnce("clash")
		Expect(getGC("clash").Status.Phase).To(Equal(gatewayv1alpha1.PhasePending))
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "shared", Name: "portico-clash"}, &appsv1.Deployment{})).To(Succeed())
	})

	It("repairs drift on owned objects but leaves fields others own", func() {
		ensureNS("drift", nil)
		create("drifty", gatewayv1alpha1.GatewayConfigSpec{Namespace: "drift"})
		reconcileOnce("drifty")
		key := types.NamespacedName{Namespace: "drift", Name: "portico-drifty"}

		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		want := dep.Spec.Template.Spec.Containers[0].Args
		dep.Spec.Template.Spec.Containers[0].Args = []string{"--hacked"}
		Expect(k8sClient.Update(ctx, dep)).To(Succeed())
		Expect(k8sClient.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "drift", Name: "portico-drifty"}})).To(Succeed())
		cm := &corev1.ConfigMap{}
		cmKey := types.NamespacedName{Namespace: "drift", Name: "portico-drifty-snapshot"}
		Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
		cm.Data[snapshot.ConfigMapKey] = "{corrupt"
		Expect(k8sClient.Update(ctx, cm)).To(Succeed())

		Expect(k8sClient.Delete(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "drift", Name: "portico-drifty"}})).To(Succeed())
		Expect(k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "drift", Name: "portico-drifty-tls"}})).To(Succeed())
		rb := &rbacv1.RoleBinding{}
		Expect(k8sClient.Get(ctx, key, rb)).To(Succeed())
		rb.Subjects[0].Name = "intruder"
		Expect(k8sClient.Update(ctx, rb)).To(Succeed())

		reconcileOnce("drifty")
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		Expect(dep.Spec.Template.Spec.Containers[0].Args).To(Equal(want))
		Expect(k8sClient.Get(ctx, key, &rbacv1.Role{})).To(Succeed())
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "drift", Name: "portico-drifty-tls"}, &corev1.Secret{})).To(Succeed())
		Expect(k8sClient.Get(ctx, key, rb)).To(Succeed())
		Expect(rb.Subjects).To(HaveLen(1))
		Expect(rb.Subjects[0].Name).To(Equal("portico-drifty"))
		Expect(k8sClient.Get(ctx, key, &corev1.Service{})).To(Succeed())
		Expect(k8sClient.Get(ctx, cmKey, cm)).To(Succeed())
		_, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
		Expect(err).NotTo(HaveOccurred())

		By("a cloud controller's Service fields survive a reconcile")
		svc := &corev1.Service{}
		Expect(k8sClient.Get(ctx, key, svc)).To(Succeed())
		svc.Annotations = map[string]string{"cloud.example.com/lb-id": "lb-123"}
		Expect(k8sClient.Update(ctx, svc)).To(Succeed())
		reconcileOnce("drifty")
		Expect(k8sClient.Get(ctx, key, svc)).To(Succeed())
		Expect(svc.Annotations).To(HaveKeyWithValue("cloud.example.com/lb-id", "lb-123"))
	})

	It("leaves replicas to the HPA, and adds or prunes the PodDisruptionBudget", func() {
		ensureNS("scale", nil)
		gc := create("scaled", gatewayv1alpha1.GatewayConfigSpec{Namespace: "scale",
			Autoscaling: &gatewayv1alpha1.AutoscalingSpec{MaxReplicas: 6}})
		reconcileOnce("scaled")
		key := types.NamespacedName{Namespace: "scale", Name: "portico-scaled"}
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		Expect(k8sClient.Get(ctx, key, hpa)).To(Succeed())
		Expect(*hpa.Spec.MinReplicas).To(Equal(int32(2)))
		Expect(hpa.Spec.MaxReplicas).To(Equal(int32(6)))
		Expect(k8sClient.Get(ctx, key, &policyv1.PodDisruptionBudget{})).To(Succeed())

		By("the HPA scales the Deployment; a reconcile keeps its value")
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		dep.Spec.Replicas = ptr.To(int32(5))
		Expect(k8sClient.Update(ctx, dep)).To(Succeed())
		reconcileOnce("scaled")
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		Expect(*dep.Spec.Replicas).To(Equal(int32(5)))

		By("dropping autoscaling for one replica removes the HPA and the budget")
		gc = getGC("scaled")
		gc.Spec.Autoscaling = nil
		gc.Spec.Replicas = ptr.To(int32(1))
		Expect(k8sClient.Update(ctx, gc)).To(Succeed())
		reconcileOnce("scaled")
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key, &autoscalingv2.HorizontalPodAutoscaler{}))).To(BeTrue())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, key, &policyv1.PodDisruptionBudget{}))).To(BeTrue())
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		Expect(*dep.Spec.Replicas).To(Equal(int32(1)))
	})

	It("writes nothing but status while paused", func() {
		ensureNS("maint", nil)
		create("paused", gatewayv1alpha1.GatewayConfigSpec{Namespace: "maint"})
		reconcileOnce("paused")
		key := types.NamespacedName{Namespace: "maint", Name: "portico-paused"}
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())

		gc := getGC("paused")
		gc.Spec.Paused = true
		gc.Spec.Replicas = ptr.To(int32(7))
		Expect(k8sClient.Update(ctx, gc)).To(Succeed())
		reconcileOnce("paused")
		after := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, key, after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(dep.ResourceVersion))
		c := condition("paused", gatewayv1alpha1.GatewayConfigConditionAccepted)
		Expect(c.Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonPaused))
		Expect(condition("paused", gatewayv1alpha1.GatewayConfigConditionProgressing).Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonPaused))

		gc = getGC("paused")
		gc.Spec.Paused = false
		Expect(k8sClient.Update(ctx, gc)).To(Succeed())
		reconcileOnce("paused")
		Expect(k8sClient.Get(ctx, key, after)).To(Succeed())
		Expect(*after.Spec.Replicas).To(Equal(int32(7)))
	})

	It("is Failed while pods cannot pull the image, Degraded while others still serve, and recovers", func() {
		ensureNS("pull", nil)
		create("badimage", gatewayv1alpha1.GatewayConfigSpec{Namespace: "pull", Image: "example.com/nope:missing"})
		reconcileOnce("badimage")
		inst := render.NewInstance(getGC("badimage"), params)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "pull", Name: "portico-badimage-1", Labels: inst.Labels()},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "gatewaypod", Image: "example.com/nope:missing"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "gatewaypod", Image: "example.com/nope:missing",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
		reconcileOnce("badimage")
		gc := getGC("badimage")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseFailed))
		Expect(gc.Status.Message).To(Equal("pod portico-badimage-1 cannot pull image example.com/nope:missing (ImagePullBackOff): Back-off pulling image; fix spec.image or the registry credentials"))
		Expect(condition("badimage", gatewayv1alpha1.GatewayConfigConditionDegraded).Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonImagePullFailed))

		By("with another pod available it is Running and Degraded, not Failed")
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "pull", Name: "portico-badimage"}, dep)).To(Succeed())
		dep.Status = appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: dep.Generation}
		Expect(k8sClient.Status().Update(ctx, dep)).To(Succeed())
		reconcileOnce("badimage")
		Expect(getGC("badimage").Status.Phase).To(Equal(gatewayv1alpha1.PhaseRunning))
		Expect(condition("badimage", gatewayv1alpha1.GatewayConfigConditionDegraded).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition("badimage", gatewayv1alpha1.GatewayConfigConditionProgressing).Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonRollingOut))

		By("the bad pod goes away")
		Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}, 10*time.Second, 100*time.Millisecond).Should(BeTrue())
		reconcileOnce("badimage")
		Expect(condition("badimage", gatewayv1alpha1.GatewayConfigConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	})

	It("serves only Ingresses from namespaces its selector admits", func() {
		ensureNS("team-a", map[string]string{"team": "a"})
		ensureNS("team-b", map[string]string{"team": "b"})
		create("team-a-gw", gatewayv1alpha1.GatewayConfigSpec{
			IngressNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}})
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "team-a-gw"}},
		})).To(Succeed())
		for _, ns := range []string{"team-a", "team-b"} {
			Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "site"},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("team-a"), Rules: []networkingv1.IngressRule{{
					Host: ns + ".example.com",
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
					}}}},
				}}},
			})).To(Succeed())
		}
		reconcileOnce("team-a-gw")
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "portico-system", Name: "portico-team-a-gw-snapshot"}, cm)).To(Succeed())
		snap, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
		Expect(err).NotTo(HaveOccurred())
		var hosts []string
		for _, h := range snap.Hosts {
			hosts = append(hosts, h.Host)
		}
		Expect(hosts).To(Equal([]string{"team-a.example.com"}))
		Expect(getGC("team-a-gw").Status.Snapshot.AcceptedIngresses).To(Equal(int32(1)))
	})

	It("warns on an IngressClass that names a missing GatewayConfig", func() {
		cr := &IngressClassReconciler{Client: k8sClient, Recorder: recorder}
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "dangling"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "ghost"}},
		})).To(Succeed())
		_, err := cr.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "dangling"}})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			var evs eventsList
			g.Expect(k8sClient.List(ctx, &evs.EventList)).To(Succeed())
			g.Expect(evs.reasonsFor("dangling")).To(ContainElement(EventReasonGatewayConfigNotFound))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})
})
