package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// The fault suite of issue #7: each case runs steady traffic through the
// gateway pods of the instance "faults" (north-south, two replicas), counts
// every request, injects one fault and checks what must hold. The cases
// share the instance, so they run in order; each leaves it healthy, so a
// failure does not stop the others (ContinueOnFailure).
const (
	faultInstance = "faults"
	faultClass    = "portico-faults"
	faultNS       = "faults"
	steadyHost    = "steady.faults.example"
)

// faultRow is one line of the results table printed at the end.
type faultRow struct {
	name, injected, outcome string
	sent, failed            int
}

var (
	faultRowsMu sync.Mutex
	faultRows   []faultRow
)

// recordFault adds a row to the results table.
func recordFault(name, injected string, sent, failed int, outcome string) {
	faultRowsMu.Lock()
	defer faultRowsMu.Unlock()
	faultRows = append(faultRows, faultRow{name: name, injected: injected, sent: sent, failed: failed, outcome: outcome})
	GinkgoWriter.Printf("FAULT %s | %s | sent %d | failed %d | %s\n", name, injected, sent, failed, outcome)
}

var _ = Describe("Faults", Ordered, ContinueOnFailure, Label("fault"), func() {
	BeforeAll(func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: faultNS}})).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, types.NamespacedName{Namespace: faultNS, Name: "default"}, &corev1.ServiceAccount{})
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		echoBackend("steady-1", "10.244.3.1:9000")
		echoBackend("steady-2", "10.244.3.2:9000")
		echoBackend("other", "10.244.3.3:9000")
		faultService("steady", 9000, "10.244.3.1", "10.244.3.2")
		faultService("other", 9000, "10.244.3.3")

		createInstance(faultInstance, faultClass, gatewayv1alpha1.TrafficNorthSouth, 2)
		faultIngress("steady", steadyHost, nil, prefixPath("/", "steady"))
		waitServing(faultInstance, 2)
		for _, ip := range gatewayPodIPs(faultInstance) {
			Eventually(func() int { return getStatus(ip, steadyHost, "/") }, 30*time.Second, 200*time.Millisecond).
				Should(Equal(http.StatusOK), "pod %s serves %s", ip, steadyHost)
		}
	})

	AfterAll(func() {
		faultRowsMu.Lock()
		defer faultRowsMu.Unlock()
		GinkgoWriter.Printf("\n| case | injected | requests sent | requests failed | outcome |\n|---|---|---|---|---|\n")
		for _, r := range faultRows {
			GinkgoWriter.Printf("| %s | %s | %d | %d | %s |\n", r.name, r.injected, r.sent, r.failed, r.outcome)
		}
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpPodLogs()
		}
	})

	Context("operator restart and leadership handover", faultOperatorSpecs)
	Context("gateway pod killed under load", faultPodKillSpecs)
	Context("endpoints churning under load", faultChurnSpecs)
	Context("backends that hang, reset or answer slowly", faultBackendSpecs)
	Context("a snapshot ConfigMap corrupted while the operator runs", faultCorruptSpecs)
	Context("the API server stopped for 30 s", faultAPIServerSpecs)
	Context("the east-west instance saturated", faultEastWestSpecs)
	Context("1 broken Ingress among 500", fault500Specs)
})

// createInstance creates a GatewayConfig and the IngressClass bound to it.
func createInstance(name, class string, traffic gatewayv1alpha1.TrafficType, replicas int32) {
	Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       gatewayv1alpha1.GatewayConfigSpec{TrafficType: traffic, Replicas: ptr.To(replicas)},
	})).To(Succeed())
	Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: class},
		Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
			APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: name}},
	})).To(Succeed())
}

// faultService creates a Service in faultNS with one EndpointSlice of ips.
func faultService(name string, port int32, ips ...string) { serviceIn(faultNS, name, port, ips...) }

// serviceIn creates a Service in ns with one EndpointSlice of ips.
func serviceIn(ns, name string, port int32, ips ...string) {
	Expect(k8sClient.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})).To(Succeed())
	Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port)}},
		Endpoints:   endpoints(ips...),
	})).To(Succeed())
}

func endpoints(ips ...string) []discoveryv1.Endpoint {
	out := []discoveryv1.Endpoint{}
	for _, ip := range ips {
		out = append(out, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return out
}

// setEndpoints replaces the endpoints of the Service's EndpointSlice.
func setEndpoints(service string, ips ...string) { setEndpointsIn(faultNS, service, ips...) }

// setEndpointsIn is setEndpoints for a Service in ns.
func setEndpointsIn(ns, service string, ips ...string) {
	es := &discoveryv1.EndpointSlice{}
	es.Namespace, es.Name = ns, service+"-1"
	update(es, func() { es.Endpoints = endpoints(ips...) })
}

// faultIngress creates an Ingress of faultClass in faultNS.
func faultIngress(name, host string, annotations map[string]string, paths ...networkingv1.HTTPIngressPath) {
	ingressIn(faultNS, faultClass, name, host, annotations, paths...)
}

// ingressIn creates an Ingress of class in ns.
func ingressIn(ns, class, name, host string, annotations map[string]string, paths ...networkingv1.HTTPIngressPath) {
	Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class), Rules: []networkingv1.IngressRule{{
			Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
		}}},
	})).To(Succeed())
}

// expectNewIngressServed creates an Ingress for host to the backend "other"
// and waits until every gateway pod of the instance serves it: the operator
// and the pods follow changes.
func expectNewIngressServed(name, host string) {
	faultIngress(name, host, nil, prefixPath("/", "other"))
	for _, ip := range gatewayPodIPs(faultInstance) {
		Eventually(func() string { _, b := getBody(ip, host, "/x"); return b }, 60*time.Second, 200*time.Millisecond).
			Should(HavePrefix("other "), "pod %s serves %s", ip, host)
	}
}

// waitServing waits until the instance is Listening with replicas pods
// serving the snapshot its status names, and returns that status.
func waitServing(instance string, replicas int32) *gatewayv1alpha1.GatewayConfig {
	return waitServingNew(instance, replicas, "")
}

// waitServingNew is waitServing for a snapshot other than version old.
func waitServingNew(instance string, replicas int32, old string) *gatewayv1alpha1.GatewayConfig {
	gc := &gatewayv1alpha1.GatewayConfig{}
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
		g.Expect(gc.Status.Snapshot.Version).NotTo(Equal(old))
		g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
		g.Expect(gc.Status.ObservedGeneration).To(Equal(gc.Generation))
		g.Expect(gc.Status.Snapshot.ServingReplicas).To(Equal(replicas))
		cm := &corev1.ConfigMap{}
		g.Expect(k8sClient.Get(ctx, snapshotKey(instance), cm)).To(Succeed())
		g.Expect(gc.Status.Snapshot.Version).To(Equal(cm.Annotations[podflags.AnnotationSnapshotVersion]))
	}, 90*time.Second, 200*time.Millisecond).Should(Succeed())
	return gc
}

func snapshotKey(instance string) types.NamespacedName {
	return types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + instance + "-snapshot"}
}

// gatewayPods lists the instance's Running pods with an IP, by IP.
func gatewayPods(instance string) []corev1.Pod {
	var list corev1.PodList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(operatorNamespace),
		client.MatchingLabels{render.LabelName: render.NameGateway, render.LabelInstance: instance})).To(Succeed())
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status.PodIP < out[j].Status.PodIP })
	return out
}

// getStatus sends one GET and returns the status code (0 on error).
func getStatus(ip, host, path string) int {
	code, _ := getBody(ip, host, path)
	return code
}

// getBody sends one GET through a gateway pod and returns status and body.
func getBody(ip, host, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d%s", ip, podflags.DefaultHTTPPort, path), nil)
	Expect(err).NotTo(HaveOccurred())
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// podMetrics scrapes a gateway pod's /metrics (health port).
func podMetrics(ip string) map[string]*dto.MetricFamily {
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", ip, podflags.DefaultHealthPort))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return fams
}

// metricValue sums the counter/gauge/untyped series of name whose labels
// include the given label=value pairs.
func metricValue(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	var total float64
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return total
}

// podMetric scrapes one metric of a gateway pod.
func podMetric(ip, name string, kv ...string) float64 {
	return metricValue(podMetrics(ip), name, kv...)
}

// ownedVersions returns kind/name -> resourceVersion of every object of
// the instance: the GatewayConfig and all it owns (and the ConfigMap).
func ownedVersions(instance string) map[string]string {
	gc := &gatewayv1alpha1.GatewayConfig{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
	out := map[string]string{"GatewayConfig/" + gc.Name: gc.ResourceVersion}
	lists := []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ConfigMapList{}, &corev1.SecretList{},
		&corev1.ServiceAccountList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &policyv1.PodDisruptionBudgetList{}}
	for _, l := range lists {
		Expect(k8sClient.List(ctx, l, client.InNamespace(operatorNamespace))).To(Succeed())
		items, err := meta.ExtractList(l)
		Expect(err).NotTo(HaveOccurred())
		for _, item := range items {
			o := item.(client.Object)
			for _, ref := range o.GetOwnerReferences() {
				if ref.UID == gc.UID {
					out[fmt.Sprintf("%T/%s", o, o.GetName())] = o.GetResourceVersion()
				}
			}
		}
	}
	Expect(len(out)).To(BeNumerically(">=", 6), "the GatewayConfig owns a Deployment, Service, ConfigMap, ServiceAccount, Role and RoleBinding: %v", out)
	return out
}

// waitQuiet waits until every GatewayConfig was reconciled at least once
// after since (a count of reconciles()) and the work queue is empty.
func waitQuiet(since float64) {
	var gcs gatewayv1alpha1.GatewayConfigList
	Expect(k8sClient.List(ctx, &gcs)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(reconciles() - since).To(BeNumerically(">=", len(gcs.Items)))
		g.Expect(operatorCounter("workqueue_depth", map[string]string{"name": "gatewayconfig"})).To(BeZero())
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

// dumpPodLogs prints the end of every gateway pod log (after a failure).
func dumpPodLogs() {
	logs, _ := filepath.Glob(filepath.Join(workDir, "pods", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		GinkgoWriter.Printf("==== %s ====\n%s\n", l, strings.TrimSpace(string(b)))
	}
}
