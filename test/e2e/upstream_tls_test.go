package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// An instance of its own: an HTTPS upstream that requires the client
// certificate of the Ingress's proxy-ssl-secret, and a gRPC (h2c) upstream
// reached by a real gRPC client through a real gatewaypod.
var _ = Describe("Upstream TLS and gRPC through a gateway pod", Ordered, func() {
	const (
		instance = "upstream"
		ns       = "uptls"
		class    = "portico-upstream"
	)
	service := func(name, ip string, port int32) {
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "main", Port: port}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("main"), Port: ptr.To(port)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})).To(Succeed())
	}
	ingress := func(name, host, svc string, ann map[string]string) {
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class), Rules: []networkingv1.IngressRule{{Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc,
						Port: networkingv1.ServiceBackendPort{Name: "main"}}}}}}}}}}})).To(Succeed())
	}
	var podIP string
	// servingThrough returns a check that a gRPC Health/Check call for
	// shop.Cart through the gateway, as authority, answers SERVING.
	servingThrough := func(authority string) func(g Gomega) {
		conn, err := grpc.NewClient(fmt.Sprintf("%s:%d", podIP, podflags.DefaultHTTPPort),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		hc := healthpb.NewHealthClient(conn)
		return func(g Gomega) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: "shop.Cart"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(healthpb.HealthCheckResponse_SERVING))
		}
	}

	BeforeAll(func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

		By("an HTTPS backend that requires a client certificate, and a gRPC health server")
		srvCrt, srvKey, _ := selfSignedPEM("api.uptls.svc") // the default verified name: <service>.<namespace>.svc
		cliCrt, cliKey, cliLeaf := selfSignedPEM("gateway-client")
		cert, err := tls.X509KeyPair(srvCrt, srvKey)
		Expect(err).NotTo(HaveOccurred())
		clientCAs := x509.NewCertPool()
		clientCAs.AddCert(cliLeaf)
		ln, err := tls.Listen("tcp", "10.244.7.10:9443", &tls.Config{Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12})
		Expect(err).NotTo(HaveOccurred())
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "tls %s %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.URL.Path)
		})}
		go func() { _ = srv.Serve(ln) }()
		DeferCleanup(srv.Close)

		gln, err := net.Listen("tcp", "10.244.7.11:50051")
		Expect(err).NotTo(HaveOccurred())
		gs := grpc.NewServer()
		hs := health.NewServer()
		hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
		go func() { _ = gs.Serve(gln) }()
		DeferCleanup(gs.Stop)

		service("api", "10.244.7.10", 9443)
		service("grpc", "10.244.7.11", 50051)
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-upstream"},
			Data: map[string][]byte{"ca.crt": srvCrt, corev1.TLSCertKey: cliCrt, corev1.TLSPrivateKeyKey: cliKey}})).To(Succeed())
		ingress("api", "api.example.com", "api", map[string]string{
			"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
			"nginx.ingress.kubernetes.io/proxy-ssl-secret": ns + "/api-upstream",
			"nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
		})
		ingress("grpc", "grpc.example.com", "grpc", map[string]string{"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"})

		By("one gateway pod bound by its own IngressClass")
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficNorthSouth, Replicas: ptr.To(int32(1))}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: class},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}}})).To(Succeed())
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(2)))
		}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
		ips := gatewayPodIPs(instance)
		Expect(ips).To(HaveLen(1))
		podIP = ips[0]
	})

	It("sends HTTPS to the upstream with the proxy-ssl-secret's client certificate, verified with its CA", func() {
		c := &http.Client{Timeout: 5 * time.Second}
		Eventually(func(g Gomega) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/orders", podIP, podflags.DefaultHTTPPort), nil)
			g.Expect(err).NotTo(HaveOccurred())
			req.Host = "api.example.com"
			resp, err := c.Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
			g.Expect(string(body)).To(Equal("tls gateway-client /orders"))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	})

	It("relays a real gRPC health check over h2c on the plain port", func() {
		Eventually(servingThrough("grpc.example.com"), 30*time.Second, 250*time.Millisecond).Should(Succeed())
	})

	It("keeps the endpoint whose gRPC health check answers NOT_SERVING out of rotation (health-check: grpc)", func() {
		By("two gRPC endpoints of one Service, the second NOT_SERVING for shop.Cart")
		addrs := []string{"10.244.7.21", "10.244.7.22"}
		var eps []discoveryv1.Endpoint
		for i, ip := range addrs {
			ln, err := net.Listen("tcp", ip+":50051")
			Expect(err).NotTo(HaveOccurred())
			gs := grpc.NewServer()
			hs := health.NewServer()
			hs.SetServingStatus("shop.Cart", []healthpb.HealthCheckResponse_ServingStatus{
				healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING}[i])
			healthpb.RegisterHealthServer(gs, hs)
			go func() { _ = gs.Serve(ln) }()
			DeferCleanup(gs.Stop)
			eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "main", Port: 50051}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "cart-1", Labels: map[string]string{discoveryv1.LabelServiceName: "cart"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("main"), Port: ptr.To(int32(50051))}},
			Endpoints:   eps,
		})).To(Succeed())
		ingress("cart", "cart.example.com", "cart", map[string]string{
			"nginx.ingress.kubernetes.io/backend-protocol": "GRPC",
			"portico.dev/health-check":                     "grpc",
			"portico.dev/health-check-grpc-service":        "shop.Cart",
			"portico.dev/health-check-interval":            "2",
			"portico.dev/health-check-timeout":             "1",
			"portico.dev/health-check-unhealthy-threshold": "1",
		})

		serving := servingThrough("cart.example.com")
		By("every call through the gateway reaches the SERVING endpoint once the check has run")
		Eventually(func(g Gomega) {
			for range 10 { // round robin would send one of two calls to the other endpoint
				serving(g)
			}
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		Consistently(serving, 3*time.Second, 100*time.Millisecond).Should(Succeed())
	})
})
