package annotations

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseClientAuth(t *testing.T) {
	tests := map[string]struct {
		in           map[string]string
		want         ClientAuth
		wantWarnings []string
		wantErrKey   string
		wantReason   string
	}{
		"secret alone: verify on, depth 1": {
			in:   map[string]string{n + "auth-tls-secret": "ns/ca"},
			want: ClientAuth{SecretNamespace: "ns", SecretName: "ca", Verify: "on", Depth: 1},
		},
		"everything": {
			in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-verify-client": "optional_no_ca", n + "auth-tls-verify-depth": "3",
				n + "auth-tls-error-page": "https://errors.example.com/cert.html", n + "auth-tls-pass-certificate-to-upstream": "true"},
			want: ClientAuth{SecretNamespace: "ns", SecretName: "ca", Verify: "optional_no_ca", Depth: 3, ErrorPage: "https://errors.example.com/cert.html", PassCertificate: true},
		},
		"bare name and portico prefix": {
			in:   map[string]string{"portico.dev/auth-tls-secret": "ca", n + "auth-tls-secret": "other/x", n + "auth-tls-verify-client": "off"},
			want: ClientAuth{SecretName: "ca", Verify: "off", Depth: 1},
		},
		"companions without a secret are ignored with a warning": {
			in:           map[string]string{n + "auth-tls-verify-client": "on"},
			wantWarnings: []string{"annotation nginx.ingress.kubernetes.io/auth-tls-verify-client is ignored: auth-tls-secret is not set"},
		},
		"bad verify mode":           {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-verify-client": "yes"}, wantErrKey: n + "auth-tls-verify-client", wantReason: ReasonInvalidAnnotation},
		"depth 0":                   {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-verify-depth": "0"}, wantErrKey: n + "auth-tls-verify-depth"},
		"relative error page":       {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-error-page": "/error"}, wantErrKey: n + "auth-tls-error-page"},
		"javascript error page":     {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-error-page": "javascript:alert(1)"}, wantErrKey: n + "auth-tls-error-page"},
		"secret with two slashes":   {in: map[string]string{n + "auth-tls-secret": "a/b/c"}, wantErrKey: n + "auth-tls-secret"},
		"secret not a DNS name":     {in: map[string]string{n + "auth-tls-secret": "ns/Bad_Name"}, wantErrKey: n + "auth-tls-secret"},
		"pass certificate not bool": {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-pass-certificate-to-upstream": "1"}, wantErrKey: n + "auth-tls-pass-certificate-to-upstream"},
		"match-cn": {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-match-cn": "CN=(alice|bob)"},
			want: ClientAuth{SecretNamespace: "ns", SecretName: "ca", Verify: "on", Depth: 1, MatchCN: "CN=(alice|bob)"}},
		"match-cn without CN=": {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-match-cn": "alice"},
			wantErrKey: n + "auth-tls-match-cn", wantReason: ReasonInvalidAnnotation},
		"match-cn not RE2": {in: map[string]string{n + "auth-tls-secret": "ns/ca", n + "auth-tls-match-cn": "CN=(?<!x)a"},
			wantErrKey: n + "auth-tls-match-cn", wantReason: ReasonInvalidAnnotation},
		"match-cn without a secret is ignored with a warning": {in: map[string]string{n + "auth-tls-match-cn": "CN=a"},
			wantWarnings: []string{"annotation nginx.ingress.kubernetes.io/auth-tls-match-cn is ignored: auth-tls-secret is not set"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMap(tc.in)
			if tc.wantErrKey != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Annotation != tc.wantErrKey {
					t.Fatalf("error = %v, want one naming %s", err, tc.wantErrKey)
				}
				if tc.wantReason != "" && ae.Reason != tc.wantReason {
					t.Errorf("reason = %s, want %s", ae.Reason, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMap: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.ClientAuth); diff != "" {
				t.Errorf("ClientAuth (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, got.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
	if !strings.Contains(ClientAuthGroup.Annotations[0].Doc, "own namespace") {
		t.Error("auth-tls-secret doc must say the Secret is read from the Ingress's namespace only")
	}
}
