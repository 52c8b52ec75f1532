package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/portico-dev/portico/gatewaypod/jwtauth/jwtauthtest"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/proxy"
)

// jwtHealthSpecs run inside the Ordered north-south container: the
// portico.dev/jwt-* and portico.dev/health-check* annotations go from the
// Ingress through the compiler, the snapshot ConfigMap and the instance
// Secret to every gateway pod.
func jwtHealthSpecs() {
	It("requires a valid JWT signed by the key in the Ingress's Secret, and keeps an endpoint failing its check out of rotation", func() {
		const apiHost = "api.example.com"
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		der, err := x509.MarshalPKIXPublicKey(key.Public())
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "api-jwt"},
			Data: map[string][]byte{"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}})).To(Succeed())

		// Two endpoints; the second one's /healthz fails at will.
		var sick atomic.Bool
		addrs := []string{"10.244.2.12:9000", "10.244.2.13:9000"}
		for i, addr := range addrs {
			name := fmt.Sprintf("api-%d", i+1)
			ln, err := net.Listen("tcp", addr)
			Expect(err).NotTo(HaveOccurred())
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/healthz" {
					if i == 1 && sick.Load() {
						w.WriteHeader(http.StatusServiceUnavailable)
					}
					return
				}
				fmt.Fprintf(w, "%s %s", name, r.Header.Get("X-User"))
			})}
			go func() { _ = srv.Serve(ln) }()
			DeferCleanup(srv.Close)
		}
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "api"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: appNamespace, Name: "api-1", Labels: map[string]string{discoveryv1.LabelServiceName: "api"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.12"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{"10.244.2.13"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})).To(Succeed())
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "api", Annotations: map[string]string{
				"portico.dev/jwt-secret":                       "api-jwt",
				"portico.dev/jwt-audiences":                    "shop",
				"portico.dev/jwt-claims-to-headers":            "sub:X-User",
				"portico.dev/health-check-path":                "/healthz",
				"portico.dev/health-check-interval":            "2",
				"portico.dev/health-check-timeout":             "1",
				"portico.dev/health-check-healthy-threshold":   "1",
				"portico.dev/health-check-unhealthy-threshold": "1",
			}},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"), Rules: []networkingv1.IngressRule{{Host: apiHost,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "api")}}}}}},
		}
		Expect(k8sClient.Create(ctx, ing)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, ing)).To(Succeed()) })

		token := jwtauthtest.Sign(GinkgoT(), jose.ES256, key, "", map[string]any{"sub": "alice", "aud": "shop", "exp": time.Now().Add(time.Hour).Unix()})
		call := func(ip, auth string) (int, string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", ip, podflags.DefaultHTTPPort), nil)
			if err != nil {
				return 0, "", err
			}
			req.Host = apiHost
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), nil
		}
		// answeredBy sends 6 requests with the token and counts the bodies.
		answeredBy := func(g Gomega, ip string) map[string]int {
			got := map[string]int{}
			for range 6 {
				code, body, err := call(ip, "Bearer "+token)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(code).To(Equal(http.StatusOK), body)
				got[body]++
			}
			return got
		}
		ips := gatewayPodIPs("public")
		Expect(ips).NotTo(BeEmpty(), "the north-south instance runs")
		for _, ip := range ips {
			Eventually(func(g Gomega) {
				g.Expect(answeredBy(g, ip)).To(Equal(map[string]int{"api-1 alice": 3, "api-2 alice": 3}))
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed(), "pod %s serves the route with the keys", ip)
			code, _, err := call(ip, "")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusUnauthorized), "no token")
			code, _, err = call(ip, "Bearer "+token[:len(token)-4]+"AAAA")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusUnauthorized), "a token with a bad signature")
		}

		By("failing the health check of api-2")
		sick.Store(true)
		for _, ip := range ips {
			Eventually(func(g Gomega) {
				g.Expect(answeredBy(g, ip)).To(Equal(map[string]int{"api-1 alice": 6}))
			}, 20*time.Second, 250*time.Millisecond).Should(Succeed(), "pod %s stops sending to api-2", ip)
			resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", ip, podflags.DefaultHealthPort))
			Expect(err).NotTo(HaveOccurred())
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			Expect(metricLine(string(b), proxy.MetricEndpointHealthy, `endpoint="10.244.2.13:9000"`)).To(HaveSuffix(" 0"))
		}

		By("api-2 passing its check again")
		sick.Store(false)
		for _, ip := range ips {
			Eventually(func(g Gomega) {
				g.Expect(answeredBy(g, ip)).To(HaveKey("api-2 alice"))
			}, 20*time.Second, 250*time.Millisecond).Should(Succeed(), "pod %s sends to api-2 again", ip)
		}
	})
}

// metricLine returns the first line of a Prometheus text page for metric
// name that contains label, or "".
func metricLine(page, name, label string) string {
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, label) {
			return l
		}
	}
	return ""
}
