package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/internal/testcerts"
)

// Client certificates (auth-tls-*) and error pages (custom-http-errors,
// default-backend) from the Ingress annotations to a real gateway pod.
var _ = Describe("Client certificates and error pages through a real gateway pod", Ordered, func() {
	const (
		instance = "mtls"
		class    = "portico-mtls"
		ns       = "mtls"
		secure   = "secure.mtls.example.com"
		public   = "public.mtls.example.com"
		fallback = "fallback.mtls.example.com"
	)
	var (
		podIP  string
		ca     *testcerts.Cert
		roots  *x509.CertPool
		client tls.Certificate
	)
	// serve starts a backend at addr with handler h and a Service name for it.
	serve := func(name, ip string, h http.HandlerFunc) {
		ln, err := net.Listen("tcp", ip+":9000")
		Expect(err).NotTo(HaveOccurred())
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
		go func() { _ = srv.Serve(ln) }()
		DeferCleanup(srv.Close)
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}}},
		})).To(Succeed())
	}
	ingress := func(name, host, svc string, ann map[string]string) {
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class),
				TLS: []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "site-tls"}},
				Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", svc)}}}}}}})).To(Succeed())
	}
	// send does one HTTPS GET with SNI sni and Host host, offering cert.
	send := func(sni, host, path string, cert *tls.Certificate) (int, string, error) {
		cfg := &tls.Config{RootCAs: roots, ServerName: sni}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s:%d%s", podIP, podflags.DefaultHTTPSPort, path), nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = host
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	BeforeAll(func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		serve("app", "10.244.4.10", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fail" {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "app failure")
				return
			}
			fmt.Fprintf(w, "app verify=%s subject=%s", r.Header.Get("Ssl-Client-Verify"), r.Header.Get("Ssl-Client-Subject-Dn"))
		})
		serve("pages", "10.244.4.11", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "error page code=%s service=%s", r.Header.Get("X-Code"), r.Header.Get("X-Service-Name"))
		})

		srv := testcerts.New(GinkgoT(), nil, testcerts.Options{DNSNames: []string{secure, public, fallback}})
		roots = x509.NewCertPool()
		roots.AddCert(srv.Cert)
		ca = testcerts.New(GinkgoT(), nil, testcerts.Options{CommonName: "mtls client CA", CA: true})
		client = testcerts.New(GinkgoT(), ca, testcerts.Options{CommonName: "alice", Client: true}).TLS()
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "site-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: srv.CertPEM, corev1.TLSPrivateKeyKey: srv.KeyPEM}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "client-ca"},
			Data: map[string][]byte{"ca.crt": ca.CertPEM}})).To(Succeed())

		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: instance},
			Spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficNorthSouth, Replicas: ptr.To(int32(1)),
				IngressNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: class},
			Spec: networkingv1.IngressClassSpec{Controller: gatewayv1alpha1.ControllerName, Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance}}})).To(Succeed())
		ingress("secure", secure, "app", map[string]string{
			"nginx.ingress.kubernetes.io/auth-tls-secret":    ns + "/client-ca",
			"nginx.ingress.kubernetes.io/custom-http-errors": "503",
			"nginx.ingress.kubernetes.io/default-backend":    "pages",
		})
		ingress("public", public, "app", nil)

		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			g.Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseListening), gc.Status.Message)
			g.Expect(gc.Status.Snapshot.AcceptedIngresses).To(Equal(int32(2)))
		}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
		ips := gatewayPodIPs(instance)
		Expect(ips).To(HaveLen(1))
		podIP = ips[0]
		Eventually(func() int { c, _, _ := send(secure, secure, "/", &client); return c }, 30*time.Second, 250*time.Millisecond).
			Should(Equal(http.StatusOK))
	})

	It("verifies client certificates per host, and refuses a Host that its TLS server name does not cover", func() {
		code, body, err := send(secure, secure, "/", &client)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal("app verify=SUCCESS subject=CN=alice,O=Portico Test"))

		code, _, err = send(secure, secure, "/", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusBadRequest), "no certificate")

		stranger := testcerts.New(GinkgoT(), nil, testcerts.Options{Client: true}).TLS()
		code, _, err = send(secure, secure, "/", &stranger)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusBadRequest), "a self-signed certificate")

		code, body, err = send(public, public, "/", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal("app verify= subject="), "a host without client auth")

		code, _, err = send(public, secure, "/", &client)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusMisdirectedRequest), "TLS for the public host, Host of the secure one")
	})

	It("answers listed upstream errors with the default-backend Service's page and the original status", func() {
		code, body, err := send(secure, secure, "/fail", &client)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusServiceUnavailable))
		Expect(body).To(Equal("error page code=503 service=app"))
	})

	It("sends a route without endpoints to its default-backend Service once that Service gets endpoints", func() {
		// "idle" never has endpoints; "spare" is named only by the
		// annotation, so only the backend-Service index wakes the instance
		// when its EndpointSlice appears.
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "idle"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spare"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		ingress("fallback", fallback, "idle", map[string]string{"nginx.ingress.kubernetes.io/default-backend": "spare"})
		Eventually(func() int { c, _, _ := send(fallback, fallback, "/", nil); return c }, 30*time.Second, 250*time.Millisecond).
			Should(Equal(http.StatusServiceUnavailable), "no endpoints anywhere yet")
		// Let the instance settle (the pod reports the new version, which
		// reconciles once more), so that only the EndpointSlice below can wake it.
		Eventually(func(g Gomega) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: instance}, gc)).To(Succeed())
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-" + instance + "-snapshot"}, cm)).To(Succeed())
			g.Expect(gc.Status.Snapshot.Version).To(Equal(cm.Annotations[podflags.AnnotationSnapshotVersion]))
			g.Expect(gc.Status.Snapshot.ServingReplicas).To(Equal(int32(1)))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())

		ln, err := net.Listen("tcp", "10.244.4.12:9000")
		Expect(err).NotTo(HaveOccurred())
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "spare")
		})}
		go func() { _ = srv.Serve(ln) }()
		DeferCleanup(srv.Close)
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "spare-1", Labels: map[string]string{discoveryv1.LabelServiceName: "spare"}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.4.12"}}},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			code, body, err := send(fallback, fallback, "/", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(body).To(Equal("spare"))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	})
})
