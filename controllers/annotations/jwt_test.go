package annotations

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestJWTGroup(t *testing.T) {
	tests := map[string]struct {
		in           map[string]string
		want         JWT
		wantErrKey   string
		wantErrMatch string
	}{
		"off": {in: map[string]string{pd + "enable-cors": "false"}},
		"full": {in: map[string]string{pd + "jwt-secret": "keys", pd + "jwt-issuer": "https://idp", pd + "jwt-audiences": "api, web,",
			pd + "jwt-header": "X-Token", pd + "jwt-claims-to-headers": "sub:X-User, email:X-Email"},
			want: JWT{SecretName: "keys", Issuer: "https://idp", Audiences: []string{"api", "web"}, Header: "X-Token",
				ClaimsToHeaders: []snapshot.ClaimHeader{{Claim: "sub", Header: "X-User"}, {Claim: "email", Header: "X-Email"}}}},
		"namespaced secret, Authorization is the default header": {in: map[string]string{pd + "jwt-secret": "team/keys", pd + "jwt-header": "authorization"},
			want: JWT{SecretNamespace: "team", SecretName: "keys"}},
		"expiry required": {in: map[string]string{pd + "jwt-secret": "keys", pd + "jwt-require-exp": "true"},
			want: JWT{SecretName: "keys", RequireExpiry: true}},
		"expiry required, bad value": {in: map[string]string{pd + "jwt-secret": "keys", pd + "jwt-require-exp": "yes please"}, wantErrKey: pd + "jwt-require-exp"},
		"expiry without secret":      {in: map[string]string{pd + "jwt-require-exp": "true"}, wantErrKey: pd + "jwt-require-exp", wantErrMatch: "needs portico.dev/jwt-secret"},
		"issuer without secret":      {in: map[string]string{pd + "jwt-issuer": "x"}, wantErrKey: pd + "jwt-issuer", wantErrMatch: "needs portico.dev/jwt-secret"},
		"bad secret name":            {in: map[string]string{pd + "jwt-secret": "Keys_1"}, wantErrKey: pd + "jwt-secret", wantErrMatch: `name "Keys_1"`},
		"bad namespace":              {in: map[string]string{pd + "jwt-secret": "a/b/c"}, wantErrKey: pd + "jwt-secret"},
		"bad header":                 {in: map[string]string{pd + "jwt-secret": "k", pd + "jwt-header": "X Token"}, wantErrKey: pd + "jwt-header"},
		"claim without header":       {in: map[string]string{pd + "jwt-secret": "k", pd + "jwt-claims-to-headers": "sub"}, wantErrKey: pd + "jwt-claims-to-headers", wantErrMatch: "claim:Header-Name"},
		"header name with colon":     {in: map[string]string{pd + "jwt-secret": "k", pd + "jwt-claims-to-headers": "sub:X:Y"}, wantErrKey: pd + "jwt-claims-to-headers"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseMap(tc.in)
			if tc.wantErrKey != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Annotation != tc.wantErrKey || !strings.Contains(ae.Message, tc.wantErrMatch) {
					t.Fatalf("error = %v, want one on %s containing %q", err, tc.wantErrKey, tc.wantErrMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.JWT, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
