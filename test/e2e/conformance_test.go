package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// The public scenarios of kubernetes-sigs/ingress-controller-conformance
// (default backend, host rules, path rules, ingress class, load balancing),
// in our own words, through a real gatewaypod process.
var _ = Describe("Ingress conformance through a real proxy", Ordered, func() {
	const (
		instance = "conformance"
		class    = "portico-conformance"
		ns       = "conformance"
	)
	var podIP string

	// backend starts n echo servers at 10.244.3.<base+i>:9000 and a Service
	// "name" with one EndpointSlice holding them all.
	backend := func(name string, base, n int) {
		var addrs []string
		for i := 0; i < n; i++ {
			ip := fmt.Sprintf("10.244.3.%d", base+i)
			echoBackend(fmt.Sprintf("%s-%d", name, i), ip+":9000")
			addrs = append(addrs, ip)
		}
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		eps := make([]discoveryv1.Endpoint, 0, len(addrs))
		for _, a := range addrs {
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{a}})
		}
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints: eps,
		})).To(Succeed())
	}
	ingress := func(name string, className *string, spec networkingv1.IngressSpec) {
		spec.IngressClassName = className
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})).To(Succeed())
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	path := func(p string, t networkingv1.PathType, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(t),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}
	}
	// send returns the status and the name of the backend that answered.
	send := func(hostHeader, p string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+podIP+":8080"+p, nil)
		Expect(err).NotTo(HaveOccurred())
		req.Host = hostHeader
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		name, _, _ := strings.Cut(string(b), " ")
		return resp.StatusCode, name
	}

	BeforeAll(func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		backend("default", 10, 1)
		backend("exact", 20, 1)
		backend("prefix", 30, 1)
		backend("longer", 40, 1)
		backend("wild", 50, 1)
		backend("spread", 60, 3)
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest, Replicas: ptr.To(int32(1)),
				IngressNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: class},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}}})).To(Succeed())

		ingress("default-backend", ptr.To(class), networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "default", Port: networkingv1.ServiceBackendPort{Name: "http"}}}})
		ingress("paths", ptr.To(class), networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("paths.example.com",
			path("/foo", networkingv1.PathTypePrefix, "prefix"),
			path("/foo", networkingv1.PathTypeExact, "exact"),
			path("/foo/bar/", networkingv1.PathTypePrefix, "longer"),
		)}})
		ingress("wildcard", ptr.To(class), networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			rule("*.wild.example.com", path("/", networkingv1.PathTypePrefix, "wild")),
			rule("exact.wild.example.com", path("/", networkingv1.PathTypePrefix, "exact")),
		}})
		ingress("spread", ptr.To(class), networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("lb.example.com",
			path("/", networkingv1.PathTypePrefix, "spread"))}})
		ingress("other-class", ptr.To("someone-else"), networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("other.example.com",
			path("/", networkingv1.PathTypePrefix, "exact"))}})

		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(4)))
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
		ips := gatewayPodIPs(instance)
		Expect(ips).To(HaveLen(1))
		podIP = ips[0]
		Eventually(func() int { c, _ := send("lb.example.com", "/"); return c }, 20*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
	})

	DescribeTable("routes by host and path as the Ingress API defines",
		func(host, p string, wantCode int, wantBackend string) {
			code, name := send(host, p)
			Expect(code).To(Equal(wantCode))
			if wantBackend != "" {
				Expect(name).To(Equal(wantBackend + "-0"))
			}
		},
		Entry("unknown host goes to the default backend", "nowhere.example.com", "/", 200, "default"),
		Entry("Exact wins over Prefix of the same path", "paths.example.com", "/foo", 200, "exact"),
		Entry("Prefix matches a trailing slash", "paths.example.com", "/foo/", 200, "prefix"),
		Entry("Prefix matches element-wise", "paths.example.com", "/foo/baz", 200, "prefix"),
		Entry("Prefix never matches a partial element", "paths.example.com", "/foobar", 200, "default"),
		Entry("the longest matching path wins", "paths.example.com", "/foo/bar/x", 200, "longer"),
		Entry("a Prefix rule's trailing slash is ignored", "paths.example.com", "/foo/bar", 200, "longer"),
		Entry("host matching is case-insensitive", "PATHS.Example.COM", "/foo", 200, "exact"),
		Entry("the port in Host is ignored", "paths.example.com:8080", "/foo", 200, "exact"),
		Entry("a wildcard matches one label", "a.wild.example.com", "/", 200, "wild"),
		Entry("an exact host beats the wildcard", "exact.wild.example.com", "/", 200, "exact"),
		Entry("a wildcard does not match the bare domain", "wild.example.com", "/", 200, "default"),
		Entry("a wildcard does not match two labels", "a.b.wild.example.com", "/", 200, "default"),
		Entry("another class's Ingress is not served", "other.example.com", "/", 200, "default"),
	)

	It("spreads requests over every ready endpoint", func() {
		seen := map[string]int{}
		for i := 0; i < 30; i++ { // bounded
			code, name := send("lb.example.com", "/")
			Expect(code).To(Equal(http.StatusOK))
			seen[name]++
		}
		Expect(seen).To(HaveLen(3), "all three endpoints answered: %v", seen)
		for name, n := range seen {
			Expect(n).To(BeNumerically(">=", 5), "endpoint %s got %d of 30", name, n)
		}
	})
})
