package compile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestCompileJWT(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	secret := func(ns, name string, data map[string][]byte) corev1.Secret {
		return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	}
	secrets := []corev1.Secret{
		secret("default", "keys", map[string][]byte{"key.pem": pemKey}),
		secret("other", "keys", map[string][]byte{"key.pem": pemKey}),
		secret("default", "both", map[string][]byte{"key.pem": pemKey, "jwks.json": []byte(`{"keys":[]}`)}),
		secret("default", "hmac", map[string][]byte{"jwks.json": []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}`)}),
	}
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	web := service("default", "web", corev1.ServicePort{Name: "http", Port: 80})
	jwtIng := func(name, host string, kv ...string) networkingv1.Ingress {
		return annotate(ingress("default", name, "portico", 10, host, path{"/", prefix, "web", port80}), kv...)
	}
	ings := []networkingv1.Ingress{
		jwtIng("ok", "ok", "portico.dev/jwt-secret", "keys", "portico.dev/jwt-issuer", "https://idp", "portico.dev/jwt-audiences", "api, web",
			"portico.dev/jwt-claims-to-headers", "sub:X-User", "portico.dev/jwt-require-exp", "true"),
		jwtIng("canary", "ok", "portico.dev/canary", "true", "portico.dev/canary-weight", "10", "portico.dev/jwt-secret", "missing"),
		jwtIng("cross-ns", "x", "portico.dev/jwt-secret", "other/keys"),
		jwtIng("missing", "m", "portico.dev/jwt-secret", "nope"),
		jwtIng("both", "b", "portico.dev/jwt-secret", "default/both"),
		jwtIng("hmac", "h", "portico.dev/jwt-secret", "hmac"),
		jwtIng("issuer-only", "i", "portico.dev/jwt-issuer", "https://idp"),
		jwtIng("open", "open"),
	}
	out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: ings, Services: []corev1.Service{web}, Secrets: secrets})
	s, err := snapshot.Decode(out.Encoded)
	if err != nil {
		t.Fatalf("snapshot does not decode: %v", err)
	}
	want := map[string]string{ // Ingress -> rejection reason ("" accepted)
		"ok": "", "canary": "", "open": "",
		"cross-ns": annotations.ReasonInvalidAnnotation, "missing": ReasonJWTSecretNotFound,
		"both": ReasonJWTSecretInvalid, "hmac": ReasonJWTSecretInvalid, "issuer-only": annotations.ReasonInvalidAnnotation,
	}
	for _, r := range out.Results {
		w := want[r.Ingress.Name]
		if (w == "") != r.Accepted || (w != "" && r.Reason != w) {
			t.Errorf("%s: accepted %v reason %s (%s), want reason %q", r.Ingress.Name, r.Accepted, r.Reason, r.Message, w)
		}
		if r.Ingress.Name == "canary" && len(r.Warnings) == 0 {
			t.Error("canary with jwt-* annotations: no warning that they are ignored")
		}
	}
	var okRoute, openRoute *snapshot.Route
	for i := range s.Hosts {
		switch s.Hosts[i].Host {
		case "ok":
			okRoute = &s.Hosts[i].Routes[0]
		case "open":
			openRoute = &s.Hosts[i].Routes[0]
		}
	}
	wantJWT := &snapshot.JWT{Secret: "default/keys", Hash: snapshot.DataHash(pemKey), Issuer: "https://idp", Audiences: []string{"api", "web"},
		ClaimsToHeaders: []snapshot.ClaimHeader{{Claim: "sub", Header: "X-User"}}, RequireExpiry: true}
	if diff := cmp.Diff(wantJWT, okRoute.JWT); diff != "" {
		t.Errorf("route JWT (-want +got):\n%s", diff)
	}
	if len(okRoute.Canaries) != 1 {
		t.Errorf("the canary did not attach: %+v", okRoute.Canaries)
	}
	if openRoute.JWT != nil {
		t.Errorf("Ingress without jwt annotations got %+v", openRoute.JWT)
	}
	if got := out.TLSData[snapshot.JWTDataKey("default/keys")]; string(got) != string(pemKey) {
		t.Errorf("instance Secret data under %s = %q, want the PEM key", snapshot.JWTDataKey("default/keys"), got)
	}
	if len(out.TLSData) != 1 {
		t.Errorf("instance Secret keys = %d, want only the accepted Ingress's JWT key", len(out.TLSData))
	}
}
