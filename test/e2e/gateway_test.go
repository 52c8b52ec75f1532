package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sort"
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
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

const (
	operatorNamespace = "portico-system"
	appNamespace      = "shop"
	host              = "echo.example.com"
)

// echoBackend is a real HTTP server on a fake pod address; it answers with
// its own name so a test can tell backends apart.
func echoBackend(name, addr string) *http.Server {
	ln, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.Path)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	DeferCleanup(srv.Close)
	return srv
}

// backendService creates a Service with one EndpointSlice pointing at addr.
func backendService(name, ip string, port int32) {
	Expect(k8sClient.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})).To(Succeed())
	Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: appNamespace, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})).To(Succeed())
}

func prefixPath(path, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}
}

// runningOf lists the pods of one instance that have a live gatewaypod process.
func runningOf(instance string) []string {
	var out []string
	for _, name := range pods.Running() {
		if strings.HasPrefix(name, "portico-"+instance+"-") {
			out = append(out, name)
		}
	}
	return out
}

// gatewayPodIPs lists the pod IPs of the instance's Running pods.
func gatewayPodIPs(instance string) []string {
	var list corev1.PodList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(operatorNamespace),
		client.MatchingLabels{render.LabelName: render.NameGateway, render.LabelInstance: instance})).To(Succeed())
	var ips []string
	for _, p := range list.Items {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			ips = append(ips, p.Status.PodIP)
		}
	}
	sort.Strings(ips)
	return ips
}

// get sends GET path with the Host header to a gateway pod and returns the
// status, body and whether the connection was reused.
func get(c *http.Client, podIP, path string) (int, string, bool, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	rctx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("http://%s:%d%s", podIP, podflags.DefaultHTTPPort, path), nil)
	if err != nil {
		return 0, "", false, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), reused, err
}

var _ = Describe("A GatewayConfig serving an Ingress", Ordered, func() {
	const instance = "public"

	AfterEach(func() {
		if !CurrentSpecReport().Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(workDir, "pods", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			GinkgoWriter.Printf("==== %s ====\n%s\n", l, b)
		}
	})

	BeforeAll(func() {
		for _, ns := range []string{appNamespace} {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			// The ServiceAccount admission needs the default ServiceAccount,
			// which the serviceaccount controller creates.
			Eventually(func() error {
				return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
			}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		}
		echoBackend("backend-a", "10.244.2.10:9000")
		echoBackend("backend-b", "10.244.2.11:9000")
		backendService("echo-a", "10.244.2.10", 9000)
		backendService("echo-b", "10.244.2.11", 9000)
	})

	It("goes Pending -> Running -> Listening with a bound IngressClass", func() {
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{
			ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec:       gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficNorthSouth, Replicas: ptr.To(int32(2))},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(BeElementOf(gatewayv1alpha1.PhasePending, gatewayv1alpha1.PhaseRunning))
			g.Expect(gc.Status.ObservedGeneration).To(Equal(gc.Generation))
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())

		By("Running without an IngressClass: pods are up but nothing binds the instance")
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseRunning), gc.Status.Message)
		}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

		By("Listening once an IngressClass binds it and ready pods serve the snapshot")
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: "portico-public"},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
			g.Expect(gc.Status.Snapshot.ServingReplicas).To(Equal(int32(2)))
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
		Expect(gatewayPodIPs(instance)).To(HaveLen(2))
		Expect(runningOf(instance)).To(HaveLen(2), "one gatewaypod process per Running pod")
	})

	It("routes an Ingress to its backend through every gateway pod, and serves an edit without restarting", func() {
		// Counted from here: the fault suite kills a pod on purpose.
		restarts := pods.Restarts()
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "echo"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"), Rules: []networkingv1.IngressRule{{
				Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "echo-a")}}},
			}}},
		}
		Expect(k8sClient.Create(ctx, ing)).To(Succeed())

		ips := gatewayPodIPs(instance)
		Expect(ips).To(HaveLen(2))
		clients := map[string]*http.Client{}
		for _, ip := range ips {
			clients[ip] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			Eventually(func(g Gomega) {
				code, body, _, err := get(clients[ip], ip, "/v2/hello")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(code).To(Equal(http.StatusOK))
				g.Expect(body).To(Equal("backend-a " + host + " /v2/hello"))
			}, 30*time.Second, 200*time.Millisecond).Should(Succeed(), "pod %s", ip)
		}

		By("the accepted Ingress carries the instance address")
		Eventually(func(g Gomega) {
			got := &networkingv1.Ingress{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ing), got)).To(Succeed())
			g.Expect(got.Status.LoadBalancer.Ingress).To(HaveLen(1))
		}, 20*time.Second, 200*time.Millisecond).Should(Succeed())

		By("opening a keep-alive connection to each pod before the edit")
		held := map[string]*http.Client{}
		for _, ip := range ips {
			held[ip] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			code, _, _, err := get(held[ip], ip, "/")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
		}

		By("editing the Ingress: /v2 now goes to backend-b")
		running := runningOf(instance)
		update(ing, func() {
			ing.Spec.Rules[0].HTTP.Paths = append(ing.Spec.Rules[0].HTTP.Paths, prefixPath("/v2", "echo-b"))
		})
		for _, ip := range ips {
			Eventually(func(g Gomega) {
				code, body, _, err := get(clients[ip], ip, "/v2/hello")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(code).To(Equal(http.StatusOK))
				g.Expect(body).To(Equal("backend-b " + host + " /v2/hello"))
			}, 30*time.Second, 200*time.Millisecond).Should(Succeed(), "pod %s", ip)
			// The keep-alive connection opened before the edit still works
			// and sees the new routes: the swap neither restarted the proxy
			// nor dropped connections.
			code, body, reused, err := get(held[ip], ip, "/v2/held")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(Equal("backend-b " + host + " /v2/held"))
			Expect(reused).To(BeTrue(), "the connection opened before the edit survived the snapshot swap")
		}
		Expect(runningOf(instance)).To(Equal(running), "no gatewaypod process was restarted")
		Expect(pods.Restarts()).To(Equal(restarts), "no gatewaypod process exited")

		By("the instance is Listening on the new snapshot")
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + instance + "-snapshot"}, cm)).To(Succeed())
			g.Expect(gc.Status.Snapshot.Version).To(Equal(cm.Annotations[podflags.AnnotationSnapshotVersion]))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	})

	It("rejects a broken Ingress alone while its neighbours keep serving", func() {
		bad := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "broken"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"),
				DefaultBackend: &networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "b"}}},
		}
		Expect(k8sClient.Create(ctx, bad)).To(Succeed())
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(1)))
			g.Expect(gc.Status.Snapshot.RejectedIngresses).To(Equal(int32(1)))
		}, 20*time.Second, 200*time.Millisecond).Should(Succeed())
		for _, ip := range gatewayPodIPs(instance) {
			code, body, _, err := get(http.DefaultClient, ip, "/v2/x")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(HavePrefix("backend-b"))
		}
	})

	Context("TLS from the Ingress's Secret", tlsSpecs)
	Context("tenancy: other namespaces' Secrets, key material, the pods' RBAC", tenancySpecs)
	Context("a snapshot ConfigMap corrupted by hand", corruptSnapshotSpecs)
	Context("an east-west instance beside the north-south one", eastWestSpecs)
	Context("JWT validation and active health checks", jwtHealthSpecs)
})
