package compile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/internal/testcerts"
)

func caSecret(ns, name string, data []byte) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{caKey: data}}
}

func TestCompileClientAuth(t *testing.T) {
	const np = annotations.NginxPrefix
	ca := testcerts.New(t, nil, testcerts.Options{CommonName: "client CA", CA: true})
	other := testcerts.New(t, nil, testcerts.Options{CommonName: "other CA", CA: true})
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	svcs := []corev1.Service{service("default", "web", corev1.ServicePort{Name: "http", Port: 80})}
	secrets := []corev1.Secret{caSecret("default", "ca", ca.CertPEM), caSecret("default", "other", other.CertPEM),
		caSecret("tenant-b", "ca", ca.CertPEM), caSecret("default", "junk", []byte("not pem")),
		caSecret("default", "keyonly", ca.KeyPEM)}
	ing := func(name string, age int, host string, kv ...string) networkingv1.Ingress {
		return annotate(ingress("default", name, "portico", age, host, path{"/" + name, prefix, "web", port80}), kv...)
	}
	hostAuth := func(out Output, host string) *snapshot.ClientAuth {
		for _, vh := range out.Snapshot.Hosts {
			if vh.Host == host {
				return vh.ClientAuth
			}
		}
		t.Fatalf("no host %q", host)
		return nil
	}
	result := func(out Output, name string) Result {
		for _, r := range out.Results {
			if r.Ingress.Name == name {
				return r
			}
		}
		t.Fatalf("no result for %s", name)
		return Result{}
	}
	want := &snapshot.ClientAuth{CASecret: "default/ca", CAHash: snapshot.DataHash(ca.CertPEM), Verify: "optional", Depth: 2,
		ErrorPage: "https://errors.example.com/", PassCertificate: true, MatchCN: "CN=(alice|bob)"}

	tests := map[string]struct {
		ings  []networkingv1.Ingress
		check func(t *testing.T, out Output)
	}{
		"host carries the verification; the CA travels in TLSData only": {
			ings: []networkingv1.Ingress{ing("a", 1, "secure.example.com", np+"auth-tls-secret", "default/ca", np+"auth-tls-verify-client", "optional",
				np+"auth-tls-verify-depth", "2", np+"auth-tls-error-page", "https://errors.example.com/", np+"auth-tls-pass-certificate-to-upstream", "true",
				np+"auth-tls-match-cn", "CN=(alice|bob)")},
			check: func(t *testing.T, out Output) {
				if diff := cmp.Diff(want, hostAuth(out, "secure.example.com")); diff != "" {
					t.Errorf("clientAuth (-want +got):\n%s", diff)
				}
				if got := out.TLSData[snapshot.CADataKey("default/ca")]; string(got) != string(ca.CertPEM) {
					t.Errorf("TLSData[%s] = %q, want the CA bundle", snapshot.CADataKey("default/ca"), got)
				}
				if strings.Contains(string(out.Encoded), "BEGIN CERTIFICATE") {
					t.Error("the CA bundle leaked into the snapshot")
				}
				if r := result(out, "a"); !r.Accepted || len(r.Warnings) != 0 {
					t.Errorf("result = %+v", r)
				}
			},
		},
		"bare secret name is the Ingress's namespace": {
			ings: []networkingv1.Ingress{ing("a", 1, "h", np+"auth-tls-secret", "ca")},
			check: func(t *testing.T, out Output) {
				if got := hostAuth(out, "h"); got == nil || got.CASecret != "default/ca" || got.Verify != "on" {
					t.Errorf("clientAuth = %+v", got)
				}
			},
		},
		"another namespace's Secret rejects the Ingress": {
			ings: []networkingv1.Ingress{ing("a", 1, "h", np+"auth-tls-secret", "tenant-b/ca"), ing("b", 1, "other.example.com")},
			check: func(t *testing.T, out Output) {
				if r := result(out, "a"); r.Accepted || r.Reason != ReasonClientCASecretForeign || !strings.Contains(r.Message, "tenant-b/ca") {
					t.Errorf("result = %+v", r)
				}
				if r := result(out, "b"); !r.Accepted {
					t.Errorf("an unrelated Ingress was affected: %+v", r)
				}
				if _, ok := out.TLSData[snapshot.CADataKey("tenant-b/ca")]; ok {
					t.Error("the foreign CA was copied")
				}
			},
		},
		"missing Secret rejects": {
			ings: []networkingv1.Ingress{ing("a", 1, "h", np+"auth-tls-secret", "default/nope")},
			check: func(t *testing.T, out Output) {
				if r := result(out, "a"); r.Accepted || r.Reason != ReasonClientCASecretNotFound {
					t.Errorf("result = %+v", r)
				}
			},
		},
		"unparseable or certificate-less ca.crt rejects": {
			ings: []networkingv1.Ingress{ing("a", 1, "h", np+"auth-tls-secret", "junk"), ing("b", 1, "i", np+"auth-tls-secret", "keyonly")},
			check: func(t *testing.T, out Output) {
				for _, n := range []string{"a", "b"} {
					if r := result(out, n); r.Accepted || r.Reason != ReasonClientCASecretInvalid {
						t.Errorf("%s: result = %+v", n, r)
					}
				}
			},
		},
		"per host: the oldest Ingress wins, the younger one is warned, and its routes are covered": {
			ings: []networkingv1.Ingress{
				ing("young", 1, "h", np+"auth-tls-secret", "default/other"),
				ing("old", 5, "h", np+"auth-tls-secret", "default/ca", np+"auth-tls-verify-client", "optional", np+"auth-tls-verify-depth", "2",
					np+"auth-tls-error-page", "https://errors.example.com/", np+"auth-tls-pass-certificate-to-upstream", "true",
					np+"auth-tls-match-cn", "CN=(alice|bob)"),
				ing("plain", 3, "h"),
			},
			check: func(t *testing.T, out Output) {
				if diff := cmp.Diff(want, hostAuth(out, "h")); diff != "" {
					t.Errorf("clientAuth (-want +got):\n%s", diff)
				}
				young := result(out, "young")
				if !young.Accepted || len(young.Warnings) != 1 || young.Warnings[0].Reason != ReasonClientAuthConflict || !strings.Contains(young.Warnings[0].Message, "default/old") {
					t.Errorf("young = %+v", young)
				}
				plain := result(out, "plain")
				if len(plain.Warnings) != 1 || plain.Warnings[0].Reason != ReasonClientAuthInherited {
					t.Errorf("plain = %+v", plain)
				}
				if _, ok := out.TLSData[snapshot.CADataKey("default/other")]; ok {
					t.Error("the losing CA was shipped")
				}
			},
		},
		"same settings on two Ingresses: no warning": {
			ings: []networkingv1.Ingress{ing("a", 2, "h", np+"auth-tls-secret", "default/ca"), ing("b", 1, "h", np+"auth-tls-secret", "ca")},
			check: func(t *testing.T, out Output) {
				for _, n := range []string{"a", "b"} {
					if r := result(out, n); !r.Accepted || len(r.Warnings) != 0 {
						t.Errorf("%s: %+v", n, r)
					}
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: tc.ings, Services: svcs, Secrets: secrets,
				EndpointSlices: []discoveryv1.EndpointSlice{slice("default", "web", "web-1", "http", 8080, nil, "10.0.0.1")}})
			if _, err := snapshot.Decode(out.Encoded); err != nil {
				t.Fatalf("snapshot does not decode: %v", err)
			}
			tc.check(t, out)
		})
	}
}
