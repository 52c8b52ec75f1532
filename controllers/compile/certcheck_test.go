package compile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/internal/testcerts"
)

func TestCertificateWarnings(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tlsSecret := func(name string, o testcerts.Options) corev1.Secret {
		c := testcerts.New(t, nil, o)
		return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: c.CertPEM, corev1.TLSPrivateKeyKey: c.KeyPEM}}
	}
	valid := func(names ...string) testcerts.Options {
		return testcerts.Options{DNSNames: names, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}
	}
	secrets := []corev1.Secret{
		tlsSecret("exact", valid("shop.example.com")),
		tlsSecret("wild", valid("*.example.com")),
		tlsSecret("other", valid("other.example.org")),
		tlsSecret("expired", testcerts.Options{DNSNames: []string{"shop.example.com"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}),
		tlsSecret("future", testcerts.Options{DNSNames: []string{"shop.example.com"}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}),
	}
	type w struct{ reason, contains string }
	tests := map[string]struct {
		secret string
		hosts  []string
		now    time.Time
		want   []w
	}{
		"exact name covers its host":            {secret: "exact", hosts: []string{"shop.example.com"}, now: now},
		"host case does not matter":             {secret: "exact", hosts: []string{"Shop.Example.COM"}, now: now},
		"wildcard covers one label":             {secret: "wild", hosts: []string{"shop.example.com"}, now: now},
		"wildcard covers the same wildcard":     {secret: "wild", hosts: []string{"*.example.com"}, now: now},
		"wildcard does not cover two labels":    {secret: "wild", hosts: []string{"a.b.example.com"}, now: now, want: []w{{ReasonTLSCertificateHostMismatch, `host "a.b.example.com" (it covers *.example.com)`}}},
		"wildcard does not cover the apex":      {secret: "wild", hosts: []string{"example.com"}, now: now, want: []w{{ReasonTLSCertificateHostMismatch, `"example.com"`}}},
		"exact name does not cover a wildcard":  {secret: "exact", hosts: []string{"*.example.com"}, now: now, want: []w{{ReasonTLSCertificateHostMismatch, `"*.example.com"`}}},
		"other name: each uncovered host named": {secret: "other", hosts: []string{"shop.example.com", "api.example.com"}, now: now, want: []w{{ReasonTLSCertificateHostMismatch, `"shop.example.com"`}, {ReasonTLSCertificateHostMismatch, `"api.example.com"`}}},
		"expired: names NotAfter": {secret: "expired", hosts: []string{"shop.example.com"}, now: now,
			want: []w{{ReasonTLSCertificateExpired, "expired at NotAfter " + now.Add(-time.Hour).Format(time.RFC3339)}}},
		"not yet valid": {secret: "future", hosts: []string{"shop.example.com"}, now: now,
			want: []w{{ReasonTLSCertificateNotYetValid, "not valid before " + now.Add(time.Hour).Format(time.RFC3339)}}},
		"no clock: validity not checked": {secret: "expired", hosts: []string{"shop.example.com"}},
		"mismatch and expired together": {secret: "expired", hosts: []string{"api.example.com"}, now: now,
			want: []w{{ReasonTLSCertificateHostMismatch, "NotAfter " + now.Add(-time.Hour).Format(time.RFC3339)}, {ReasonTLSCertificateExpired, "api.example.com"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ing := ingress("default", "a", "portico", 1, "shop.example.com", path{"/", prefix, "web", port80})
			ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tc.hosts, SecretName: tc.secret}}
			out := Compile(Inputs{Instance: "gw", IngressClasses: []networkingv1.IngressClass{class("portico", "gw", false)},
				Ingresses: []networkingv1.Ingress{ing}, Secrets: secrets, Now: tc.now,
				Services:       []corev1.Service{service("default", "web", corev1.ServicePort{Name: "http", Port: 80})},
				EndpointSlices: []discoveryv1.EndpointSlice{slice("default", "web", "web-1", "http", 8080, nil, "10.0.0.1")}})
			res := out.Results[0]
			if !res.Accepted {
				t.Fatalf("rejected: %+v", res)
			}
			var got []w
			for _, x := range res.Warnings {
				got = append(got, w{x.Reason, x.Message})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %s, want %d", cmp.Diff(nil, got, cmp.AllowUnexported(w{})), len(tc.want))
			}
			for i := range got {
				if got[i].reason != tc.want[i].reason || !strings.Contains(got[i].contains, tc.want[i].contains) || !strings.Contains(got[i].contains, "Secret default/"+tc.secret) {
					t.Errorf("warning %d = %s %q, want %s containing %q", i, got[i].reason, got[i].contains, tc.want[i].reason, tc.want[i].contains)
				}
			}
			if len(out.Snapshot.Certificates) != 1 {
				t.Errorf("the certificate must still ship: %+v", out.Snapshot.Certificates)
			}
		})
	}
}
