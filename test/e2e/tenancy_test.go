/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// tenancySpecs run inside the Ordered north-south container, after
// tlsSpecs: the instance "public" serves shop's Ingresses, with shop's TLS
// Secret echo-tls. Another team's namespace holds Secrets an Ingress in shop
// tries to reach.
func tenancySpecs() {
	const (
		other     = "other-team"
		crossHost = "cross.example.com"
		tlsHost   = "cross-tls.example.com"
	)
	var stolenKey []byte

	// keyMarkers are substrings that only a copy of the key could contain:
	// the base64 lines of its PEM body.
	keyMarkers := func(keyPEM []byte) []string {
		var out []string
		for _, l := range strings.Split(string(keyPEM), "\n") {
			if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
				out = append(out, l)
			}
		}
		Expect(out).NotTo(BeEmpty())
		return out
	}

	// converged waits until every pod of "public" serves the snapshot in
	// the ConfigMap (later specs compare the two) and it has no marker host.
	converged := func() {
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-public-snapshot"}, cm)).To(Succeed())
			s, err := snapshot.Decode([]byte(cm.Data[snapshot.ConfigMapKey]))
			g.Expect(err).NotTo(HaveOccurred())
			for _, h := range s.Hosts {
				g.Expect(h.Host).NotTo(Equal("marker.example.com"))
			}
			for _, ip := range gatewayPodIPs("public") {
				resp, err := http.Get(fmt.Sprintf("http://%s:%d/readyz", ip, podflags.DefaultHealthPort))
				g.Expect(err).NotTo(HaveOccurred())
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				g.Expect(strings.TrimSpace(string(b))).To(Equal("ok "+s.Version), "pod %s", ip)
			}
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	}
	// hostGet is the status of GET / for host h on a pod (0: no answer).
	hostGet := func(ip, h string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", ip, podflags.DefaultHTTPPort), nil)
		Expect(err).NotTo(HaveOccurred())
		req.Host = h
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// ingress is an Ingress of class portico-public routing host to svc.
	ingress := func(ns, name, host, svc string) *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"), Rules: []networkingv1.IngressRule{{
				Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", svc)}}},
			}}},
		}
	}

	It("does not serve an Ingress that refers to another namespace's Secret, and never serves that Secret", func() {
		// Later specs see the Ingresses of shop as they were, served by
		// every pod (they compare the served version with the ConfigMap's).
		DeferCleanup(func() {
			for _, n := range []string{"cross-proxy-ssl-secret", "cross-auth-tls-secret", "cross-tls", "cross-service", "tenancy-marker"} {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &networkingv1.Ingress{
					ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: n}}))).To(Succeed())
			}
			converged()
		})
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
		crt, key, stolenLeaf := selfSignedPEM(tlsHost)
		stolenKey = key
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "stolen"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key, "ca.crt": crt}})).To(Succeed())

		By("an annotation naming other-team/stolen is rejected with a Warning Event")
		for _, ann := range []string{"proxy-ssl-secret", "auth-tls-secret"} {
			name := "cross-" + ann
			ing := ingress(appNamespace, name, ann+"."+crossHost, "echo-a")
			ing.Annotations = map[string]string{"nginx.ingress.kubernetes.io/" + ann: other + "/stolen"}
			Expect(k8sClient.Create(ctx, ing)).To(Succeed())
			Eventually(func(g Gomega) {
				var evs eventsv1.EventList
				g.Expect(k8sClient.List(ctx, &evs, client.InNamespace(appNamespace))).To(Succeed())
				found := false
				for _, e := range evs.Items {
					if e.Regarding.Kind == "Ingress" && e.Regarding.Name == name && e.Type == corev1.EventTypeWarning &&
						strings.Contains(e.Note, ann) {
						found = true
					}
				}
				g.Expect(found).To(BeTrue(), "a Warning Event on %s naming %s", name, ann)
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		}

		By("a backend Service that exists only in another namespace is not reached")
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "only-other"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: other, Name: "only-other-1", Labels: map[string]string{discoveryv1.LabelServiceName: "only-other"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, ingress(appNamespace, "cross-service", "cross-service.example.com", "only-other"))).To(Succeed())

		By("spec.tls can only name a Secret of the Ingress's own namespace")
		Expect(k8sClient.Create(ctx, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: "cross-tls"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("portico-public"),
				TLS: []networkingv1.IngressTLS{{Hosts: []string{tlsHost}, SecretName: "stolen"}},
				Rules: []networkingv1.IngressRule{{Host: tlsHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{prefixPath("/", "echo-a")}}}}}},
		})).To(Succeed())
		// A later Ingress in the same snapshot shows the instance has moved past the three above.
		Expect(k8sClient.Create(ctx, ingress(appNamespace, "tenancy-marker", "marker.example.com", "echo-a"))).To(Succeed())
		for _, ip := range gatewayPodIPs("public") {
			Eventually(func() int { return hostGet(ip, "marker.example.com") }, 30*time.Second, 250*time.Millisecond).Should(Equal(200), "pod %s", ip)
			for _, h := range []string{"proxy-ssl-secret." + crossHost, "auth-tls-secret." + crossHost} {
				Expect(hostGet(ip, h)).To(Equal(404), "pod %s serves %s", ip, h)
			}
			// No Service of that name in shop: no endpoint to send to.
			Expect(hostGet(ip, "cross-service.example.com")).To(BeElementOf(http.StatusNotFound, http.StatusServiceUnavailable),
				"pod %s reaches other-team's Service", ip)
			// Whatever the TLS listener presents for the host, it is not other-team's certificate.
			conn, err := tls.Dial("tcp", fmt.Sprintf("%s:%d", ip, podflags.DefaultHTTPSPort), &tls.Config{InsecureSkipVerify: true, ServerName: tlsHost})
			if err == nil {
				leaf := conn.ConnectionState().PeerCertificates[0]
				conn.Close()
				Expect(leaf.Equal(stolenLeaf)).To(BeFalse(), "pod %s presents other-team/stolen for %s", ip, tlsHost)
			}
		}
	})

	It("never serves an Ingress from a namespace outside the instance's selector", func() {
		gc := &gatewayv1alpha1.GatewayConfig{}
		gc.Name = "public"
		update(gc, func() {
			gc.Spec.IngressNamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": appNamespace}}
		})
		DeferCleanup(func() {
			update(gc, func() { gc.Spec.IngressNamespaceSelector = nil })
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "outside"}}))).To(Succeed())
			Eventually(func() int { return hostGet(gatewayPodIPs("public")[0], "outside.example.com") }, 30*time.Second, 250*time.Millisecond).
				Should(Equal(http.StatusNotFound))
			converged()
		})
		// A complete Ingress in other-team: Service, endpoints (backend-a), rule.
		Expect(k8sClient.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "echo"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: other, Name: "echo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(9000))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, ingress(other, "outside", "outside.example.com", "echo"))).To(Succeed())
		// Touch an Ingress of shop so a snapshot is compiled after the one above exists.
		marker := ingress(appNamespace, "tenancy-marker", "marker.example.com", "echo-a")
		Expect(k8sClient.Create(ctx, marker)).To(Succeed())
		for _, ip := range gatewayPodIPs("public") {
			Eventually(func() int { return hostGet(ip, "marker.example.com") }, 30*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK), "pod %s", ip)
			Consistently(func() int { return hostGet(ip, "outside.example.com") }, time.Second, 200*time.Millisecond).
				Should(Equal(http.StatusNotFound), "pod %s serves an Ingress of %s", ip, other)
		}
		Expect(k8sClient.Delete(ctx, marker)).To(Succeed())

		By("the same Ingress is served once the selector admits its namespace (the check can see it)")
		update(gc, func() { gc.Spec.IngressNamespaceSelector = nil })
		Eventually(func() int { return hostGet(gatewayPodIPs("public")[0], "outside.example.com") }, 30*time.Second, 250*time.Millisecond).
			Should(Equal(http.StatusOK))
		Expect(k8sClient.Delete(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "outside"}})).To(Succeed())
	})

	It("keeps Secret bytes out of every ConfigMap and every gatewaypod log", func() {
		own := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "echo-tls"}, own)).To(Succeed())
		markers := append(keyMarkers(own.Data[corev1.TLSPrivateKeyKey]), keyMarkers(stolenKey)...)
		var cms corev1.ConfigMapList
		Expect(k8sClient.List(ctx, &cms)).To(Succeed())
		Expect(cms.Items).NotTo(BeEmpty())
		for _, cm := range cms.Items {
			for k, v := range cm.Data {
				for _, m := range markers {
					Expect(v).NotTo(ContainSubstring(m), "ConfigMap %s/%s key %s holds key material", cm.Namespace, cm.Name, k)
				}
			}
			for k, v := range cm.BinaryData {
				for _, m := range markers {
					Expect(bytes.Contains(v, []byte(m))).To(BeFalse(), "ConfigMap %s/%s key %s holds key material", cm.Namespace, cm.Name, k)
				}
			}
		}
		logs, err := filepath.Glob(filepath.Join(workDir, "pods", "*.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(logs).NotTo(BeEmpty())
		for _, l := range logs {
			b, err := os.ReadFile(l)
			Expect(err).NotTo(HaveOccurred())
			for _, m := range markers {
				Expect(bytes.Contains(b, []byte(m))).To(BeFalse(), "%s holds key material", l)
			}
		}
		// The instance Secret does hold the own key: the markers would find a copy.
		inst := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: "portico-public-tls"}, inst)).To(Succeed())
		found := false
		for _, v := range inst.Data {
			found = found || bytes.Contains(v, []byte(markers[0]))
		}
		Expect(found).To(BeTrue(), "the markers find the key where it belongs")
	})

	It("lets the gateway pods' ServiceAccount read its own ConfigMap and Secret and nothing else", func() {
		cfg := rest.CopyConfig(cluster.Config)
		cfg.Impersonate = rest.ImpersonationConfig{
			UserName: "system:serviceaccount:" + operatorNamespace + ":portico-public",
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"},
		}
		sa, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
		Expect(sa.Get(ctx, key(operatorNamespace, "portico-public-snapshot"), &corev1.ConfigMap{})).To(Succeed())
		Expect(sa.Get(ctx, key(operatorNamespace, "portico-public-tls"), &corev1.Secret{})).To(Succeed())
		var own corev1.ConfigMapList
		Expect(sa.List(ctx, &own, client.InNamespace(operatorNamespace),
			client.MatchingFields{"metadata.name": "portico-public-snapshot"})).To(Succeed(), "list/watch of its own ConfigMap by name")
		Expect(own.Items).To(HaveLen(1))
		forbidden := map[string]error{
			"get shop/echo-tls":                sa.Get(ctx, key(appNamespace, "echo-tls"), &corev1.Secret{}),
			"get other-team/stolen":            sa.Get(ctx, key(other, "stolen"), &corev1.Secret{}),
			"get operator kube-root-ca.crt":    sa.Get(ctx, key(operatorNamespace, "kube-root-ca.crt"), &corev1.ConfigMap{}),
			"get shop kube-root-ca.crt":        sa.Get(ctx, key(appNamespace, "kube-root-ca.crt"), &corev1.ConfigMap{}),
			"list Secrets in its namespace":    sa.List(ctx, &corev1.SecretList{}, client.InNamespace(operatorNamespace)),
			"list Secrets cluster-wide":        sa.List(ctx, &corev1.SecretList{}),
			"list ConfigMaps in its namespace": sa.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(operatorNamespace)),
			"update its own ConfigMap":         sa.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "portico-public-snapshot"}}),
			"create a ConfigMap":               sa.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "tenancy-probe"}}),
			"get an Ingress":                   sa.Get(ctx, key(appNamespace, "echo"), &networkingv1.Ingress{}),
		}
		for what, err := range forbidden {
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: %v", what, err)
		}
	})
}
