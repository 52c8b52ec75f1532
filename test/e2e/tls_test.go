package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

func selfSignedPEM(host string) (crtPEM, keyPEM []byte, leaf *x509.Certificate) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	Expect(err).NotTo(HaveOccurred())
	leaf, err = x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	kb, err := x509.MarshalECPrivateKey(k)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), leaf
}

// tlsSpecs run inside the Ordered north-south container: an Ingress's TLS
// Secret reaches every pod through the instance Secret (read through the API
// with the pod's own ServiceAccount) and is served by SNI, over HTTP/2.
func tlsSpecs() {
	It("terminates TLS with the Ingress's certificate, chosen by SNI, and rotates it without a restart", func() {
		crt, key, leaf := selfSignedPEM(host)
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "echo-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		ing := &networkingv1.Ingress{}
		ing.Namespace, ing.Name = appNamespace, "echo"
		update(ing, func() { ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "echo-tls"}} })

		client := func(leaf *x509.Certificate) *http.Client {
			pool := x509.NewCertPool()
			pool.AddCert(leaf)
			return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host}, ForceAttemptHTTP2: true}}
		}
		httpsGet := func(c *http.Client, ip string) (string, string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s:%d/v2/secure", ip, podflags.DefaultHTTPSPort), nil)
			if err != nil {
				return "", "", err
			}
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				return "", "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b), resp.Proto, nil
		}
		for _, ip := range gatewayPodIPs("public") {
			Eventually(func(g Gomega) {
				body, proto, err := httpsGet(client(leaf), ip)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(body).To(Equal("backend-b " + host + " /v2/secure"))
				g.Expect(proto).To(Equal("HTTP/2.0"))
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed(), "pod %s", ip)
		}

		By("rotating the certificate in the Ingress's Secret")
		running := runningOf("public")
		crt2, key2, leaf2 := selfSignedPEM(host)
		update(secret, func() { secret.Data = map[string][]byte{corev1.TLSCertKey: crt2, corev1.TLSPrivateKeyKey: key2} })
		for _, ip := range gatewayPodIPs("public") {
			Eventually(func() error { _, _, err := httpsGet(client(leaf2), ip); return err }, 30*time.Second, 250*time.Millisecond).
				Should(Succeed(), "pod %s serves the new certificate", ip)
		}
		Expect(runningOf("public")).To(Equal(running), "no gatewaypod process was restarted")

		By("plain HTTP is redirected to HTTPS once the host has TLS, as with ingress-nginx")
		noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		ip := gatewayPodIPs("public")[0]
		code, _, _, err := get(noFollow, ip, "/v2/plain")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusPermanentRedirect))

		By("ssl-redirect: \"false\" keeps plain HTTP for the later specs")
		update(ing, func() { ing.Annotations = map[string]string{"nginx.ingress.kubernetes.io/ssl-redirect": "false"} })
		for _, ip := range gatewayPodIPs("public") {
			Eventually(func() int { c, _, _, _ := get(noFollow, ip, "/v2/plain"); return c }, 30*time.Second, 250*time.Millisecond).
				Should(Equal(http.StatusOK), "pod %s", ip)
		}
	})
}
