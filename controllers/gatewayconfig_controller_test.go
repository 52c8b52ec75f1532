package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

var _ = Describe("GatewayConfig reconciler", func() {
	var r *GatewayConfigReconciler
	params := render.Params{Namespace: "portico-system", Image: "example.com/portico:test"}

	reconcileOnce := func(name string) {
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		Expect(err).NotTo(HaveOccurred())
	}
	getGC := func(name string) *gatewayv1alpha1.GatewayConfig {
		gc := &gatewayv1alpha1.GatewayConfig{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: name}, gc)).To(Succeed())
		return gc
	}

	BeforeEach(func() {
		// A direct (uncached) client: Reconcile is called by hand here.
		r = &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder, Params: params}
	})

	It("creates the fleet, compiles the snapshot, and is idempotent", func() {
		for _, ns := range []string{"portico-system", "shop"} {
			Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		}
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "public"}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		Expect(gc.Spec.TrafficType).To(Equal(gatewayv1alpha1.TrafficNorthSouth), "defaulted by the API server")
		Expect(*gc.Spec.Replicas).To(Equal(int32(2)))

		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "portico-public"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("gateway.portico.dev"), Kind: "GatewayConfig", Name: "public"}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.10"}}},
		})).To(Succeed())
		good := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "good"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"), Rules: []networkingv1.IngressRule{{
				Host: "shop.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}}},
			}}},
		}
		Expect(k8sClient.Create(ctx, good)).To(Succeed())
		bad := good.DeepCopy()
		bad.ObjectMeta = metav1.ObjectMeta{Namespace: "shop", Name: "bad"}
		bad.Spec.Rules = nil
		bad.Spec.DefaultBackend = &networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "b"}}
		Expect(k8sClient.Create(ctx, bad)).To(Succeed())

		reconcileOnce("public")

		inst := render.NewInstance(getGC("public"), params)
		key := types.NamespacedName{Namespace: "portico-system", Name: "portico-public"}
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		Expect(dep.OwnerReferences).To(HaveLen(1))
		Expect(dep.OwnerReferences[0].Name).To(Equal("public"))
		c := dep.Spec.Template.Spec.Containers[0]
		Expect(c.Command).To(Equal([]string{render.GatewayCommand}))
		flags, err := podflags.Parse(c.Args)
		Expect(err).NotTo(HaveOccurred(), "the Deployment's args parse with gatewaypod's own parser")
		Expect(flags.SnapshotConfigMap).To(Equal(inst.ConfigMap))
		Expect(c.Image).To(Equal(params.Image))

		svc := &corev1.Service{}
		Expect(k8sClient.Get(ctx, key, svc)).To(Succeed())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeLoadBalancer))
		Expect(svc.Spec.ExternalTrafficPolicy).To(Equal(corev1.ServiceExternalTrafficPolicyLocal))
		Expect(k8sClient.Get(ctx, key, &corev1.ServiceAccount{})).To(Succeed())
		role := &rbacv1.Role{}
		Expect(k8sClient.Get(ctx, key, role)).To(Succeed())
		Expect(role.Rules[0].ResourceNames).To(Equal(append([]string{inst.ConfigMap}, inst.PartConfigMaps()...)), "pods read only their own snapshot and its parts")
		Expect(k8sClient.Get(ctx, key, &rbacv1.RoleBinding{})).To(Succeed())

		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "portico-system", Name: inst.ConfigMap}, cm)).To(Succeed())
		snap, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
		Expect(err).NotTo(HaveOccurred())
		Expect(snap.Hosts).To(HaveLen(1))
		Expect(snap.Hosts[0].Routes[0].Backend.Endpoints).To(Equal([]string{"10.244.1.10:8080"}))

		gc = getGC("public")
		Expect(gc.Status.ObservedGeneration).To(Equal(gc.Generation))
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhasePending), "no pod is available yet")
		Expect(gc.Status.Snapshot.Version).To(Equal(snap.Version))
		Expect(gc.Status.IngressClasses).To(Equal([]string{"portico-public"}))
		Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(1)))
		Expect(gc.Status.Snapshot.RejectedIngresses).To(Equal(int32(1)))
		Expect(gc.Status.Addresses).To(Equal([]string{svc.Spec.ClusterIP}))

		// Accepted Ingress gets the address; the rejected one none, and an Event.
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(good), good)).To(Succeed())
		Expect(good.Status.LoadBalancer.Ingress).To(Equal([]networkingv1.IngressLoadBalancerIngress{{IP: svc.Spec.ClusterIP}}))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(bad), bad)).To(Succeed())
		Expect(bad.Status.LoadBalancer.Ingress).To(BeEmpty())
		Eventually(func(g Gomega) {
			var evs eventsList
			g.Expect(k8sClient.List(ctx, &evs.EventList, client.InNamespace("shop"))).To(Succeed())
			g.Expect(evs.reasonsFor("bad")).To(ContainElement(EventReasonIngressRejected))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())

		// Idempotence: a second reconcile changes nothing.
		depRV, cmRV, gcRV := dep.ResourceVersion, cm.ResourceVersion, gc.ResourceVersion
		reconcileOnce("public")
		Expect(k8sClient.Get(ctx, key, dep)).To(Succeed())
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "portico-system", Name: inst.ConfigMap}, cm)).To(Succeed())
		Expect(dep.ResourceVersion).To(Equal(depRV))
		Expect(cm.ResourceVersion).To(Equal(cmRV))
		Expect(getGC("public").ResourceVersion).To(Equal(gcRV))

		// Running, then Listening once a ready pod reports the snapshot version.
		dep.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1}
		Expect(k8sClient.Status().Update(ctx, dep)).To(Succeed())
		reconcileOnce("public")
		Expect(getGC("public").Status.Phase).To(Equal(gatewayv1alpha1.PhaseRunning))

		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "portico-system", Name: "portico-public-x", Labels: inst.Labels(),
				Annotations: map[string]string{podflags.AnnotationSnapshotVersion: snap.Version}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gatewaypod", Image: "x"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
		reconcileOnce("public")
		gc = getGC("public")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
		Expect(meta.IsStatusConditionTrue(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionProgrammed)).To(BeTrue())
	})

	It("reports Failed while the instance namespace is missing, and recovers", func() {
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "lost"}, Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "not-yet"}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		reconcileOnce("lost")
		gc = getGC("lost")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseFailed))
		Expect(gc.Status.Message).To(ContainSubstring(`namespace "not-yet" does not exist`))

		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-yet"}})).To(Succeed())
		reconcileOnce("lost")
		gc = getGC("lost")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhasePending))
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "not-yet", Name: "portico-lost"}, &appsv1.Deployment{})).To(Succeed())
	})

	It("gives an east-west instance a ClusterIP Service", func() {
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "internal"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		reconcileOnce("internal")
		svc := &corev1.Service{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: "portico-system", Name: "portico-internal"}, svc)).To(Succeed())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
	})
})

var _ = Describe("GatewayConfig validation by the API server", func() {
	DescribeTable("rejects invalid specs",
		func(spec gatewayv1alpha1.GatewayConfigSpec, msg string) {
			gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{GenerateName: "invalid-"}, Spec: spec}
			err := k8sClient.Create(ctx, gc)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(msg))
		},
		Entry("east-west with a LoadBalancer", gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest,
			Service: &gatewayv1alpha1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}, "an EastWest instance cannot use a LoadBalancer Service"),
		Entry("unknown traffic type", gatewayv1alpha1.GatewayConfigSpec{TrafficType: "Sideways"}, `spec.trafficType: Unsupported value: "Sideways": supported values: "NorthSouth", "EastWest"`),
		Entry("negative replicas", gatewayv1alpha1.GatewayConfigSpec{Replicas: ptr.To(int32(-1))}, "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
		Entry("bad namespace name", gatewayv1alpha1.GatewayConfigSpec{Namespace: "Not_A_Name"}, `spec.namespace: Invalid value: "Not_A_Name": spec.namespace in body should match`),
		Entry("autoscaling min above max", gatewayv1alpha1.GatewayConfigSpec{Autoscaling: &gatewayv1alpha1.AutoscalingSpec{MinReplicas: 5, MaxReplicas: 3}},
			"autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
		Entry("both budget fields", gatewayv1alpha1.GatewayConfigSpec{PodDisruptionBudget: &gatewayv1alpha1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
			"set exactly one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable"),
		Entry("same HTTP and HTTPS port", gatewayv1alpha1.GatewayConfigSpec{Service: &gatewayv1alpha1.ServiceSpec{HTTPPort: 8443, HTTPSPort: 8443}},
			"service.httpPort and service.httpsPort must differ"),
		Entry("load-balancer class on a ClusterIP Service", gatewayv1alpha1.GatewayConfigSpec{Service: &gatewayv1alpha1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, LoadBalancerClass: ptr.To("example.com/lb")}}, "service.loadBalancerClass needs service.type LoadBalancer"),
		Entry("malformed port range", gatewayv1alpha1.GatewayConfigSpec{Tuning: &gatewayv1alpha1.TuningSpec{IPLocalPortRange: "1024-65000"}},
			`spec.tuning.ipLocalPortRange: Invalid value: "1024-65000"`),
		Entry("a trusted proxy that is not a CIDR", gatewayv1alpha1.GatewayConfigSpec{Defaults: &gatewayv1alpha1.DefaultsSpec{TrustedProxies: []string{"10.0.0.0/8", "lb.example.com"}}},
			"defaults.trustedProxies must hold CIDRs or IP addresses"),
		Entry("a sample rate outside Sampled mode", gatewayv1alpha1.GatewayConfigSpec{Defaults: &gatewayv1alpha1.DefaultsSpec{
			AccessLog: &gatewayv1alpha1.AccessLogSpec{Mode: "Full", SampleRate: "0.5"}}}, "accessLog.sampleRate needs accessLog.mode Sampled"),
		Entry("a sample rate above one", gatewayv1alpha1.GatewayConfigSpec{Defaults: &gatewayv1alpha1.DefaultsSpec{
			AccessLog: &gatewayv1alpha1.AccessLogSpec{Mode: "Sampled", SampleRate: "1.5"}}}, `spec.defaults.accessLog.sampleRate: Invalid value: "1.5"`),
		Entry("an unknown access-log field", gatewayv1alpha1.GatewayConfigSpec{Defaults: &gatewayv1alpha1.DefaultsSpec{
			AccessLog: &gatewayv1alpha1.AccessLogSpec{Mode: "Full", Fields: []string{"authorization"}}}}, `Unsupported value: "authorization"`),
		Entry("somaxconn too small", gatewayv1alpha1.GatewayConfigSpec{Tuning: &gatewayv1alpha1.TuningSpec{Somaxconn: ptr.To(int32(1))}},
			"spec.tuning.somaxconn: Invalid value: 1: spec.tuning.somaxconn in body should be greater than or equal to 128"),
	)

	It("keeps trafficType immutable", func() {
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		gc.Spec.TrafficType = gatewayv1alpha1.TrafficEastWest
		err := k8sClient.Update(ctx, gc)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("trafficType is immutable"))
	})
})
