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

package proxy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/jwtauth/jwtauthtest"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestJWT: a route with a JWT policy forwards only requests with a valid
// token, answering 401 with a Bearer challenge otherwise, copies claims
// into headers the client cannot forge, and never forwards when its keys
// are not loaded.
func TestJWT(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey.Public(), KeyID: "r"}, {Key: ecKey.Public(), KeyID: "e"}, {Key: edKey.Public(), KeyID: "d"}}})
	der, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	var hits atomic.Int64
	be := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Saw-User", r.Header.Get("X-User"))
		w.Header().Set("X-Saw-Groups", r.Header.Get("X-Groups"))
		w.Header().Set("X-Saw-Email", strings.Join(r.Header.Values("X-Email"), "|"))
	})
	reg := prometheus.NewPedanticRegistry()
	p, front := newProxy(t, reg)
	policy := &snapshot.JWT{Secret: "team/keys", Hash: snapshot.DataHash(jwks), Issuer: "https://idp", Audiences: []string{"api"},
		ClaimsToHeaders: []snapshot.ClaimHeader{{Claim: "sub", Header: "X-User"}, {Claim: "groups", Header: "X-Groups"}, {Claim: "email", Header: "X-Email"}}}
	snap := oneRoute("svc", addr(be))
	snap.Hosts[0].Routes[0].JWT = policy
	custom := *policy
	custom.Header = "X-Token"
	snap.Hosts = append(snap.Hosts, snapshot.VirtualHost{Host: "custom.test", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "svc", Endpoints: []string{addr(be)}}, JWT: &custom}}})
	strict := *policy
	strict.RequireExpiry = true
	snap.Hosts = append(snap.Hosts, snapshot.VirtualHost{Host: "strict.test", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "svc", Endpoints: []string{addr(be)}}, JWT: &strict}}})
	if _, err := snapshot.Decode(snapshot.Seal(snap)); err != nil {
		t.Fatal(err)
	}
	p.Swap(compile(t, snap))

	now := time.Now()
	good := map[string]any{"iss": "https://idp", "aud": "api", "sub": "alice", "groups": []string{"a", "b"}, "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	noExp := with("exp", nil)
	delete(noExp, "exp")
	unexpiring := jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", noExp)

	// Before the instance Secret is read: 503, nothing forwarded.
	if resp, _ := get(t, front.Client(), front.URL+"/", bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good))); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("keys not loaded: status %d, want 503", resp.StatusCode)
	}
	p.SetSecretData(map[string][]byte{snapshot.JWTDataKey("team/keys"): jwks})

	hs := jwtauthtest.Sign(t, jose.HS256, rsaPEM, "r", good) // the public key used as an HMAC secret
	enc := base64.RawURLEncoding
	none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(`{"iss":"https://idp","aud":"api","sub":"alice"}`)) + "."
	tests := map[string]struct {
		hdr       map[string]string
		want      int
		challenge string // substring of WWW-Authenticate
	}{
		"RS256":                            {hdr: bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good)), want: 200},
		"ES256":                            {hdr: bearer(jwtauthtest.Sign(t, jose.ES256, ecKey, "e", good)), want: 200},
		"EdDSA":                            {hdr: bearer(jwtauthtest.Sign(t, jose.EdDSA, edKey, "d", good)), want: 200},
		"lower-case scheme":                {hdr: map[string]string{"Authorization": "bearer " + jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good)}, want: 200},
		"no token":                         {want: 401, challenge: `Bearer realm="portico"`},
		"basic scheme":                     {hdr: map[string]string{"Authorization": "Basic YTpi"}, want: 401, challenge: `Bearer realm="portico"`},
		"expired":                          {hdr: bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", with("exp", now.Add(-time.Hour).Unix()))), want: 401, challenge: `error="invalid_token"`},
		"not yet valid":                    {hdr: bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", with("nbf", now.Add(time.Hour).Unix()))), want: 401, challenge: "invalid_token"},
		"wrong audience":                   {hdr: bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", with("aud", "other"))), want: 401, challenge: "invalid_token"},
		"wrong issuer":                     {hdr: bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", with("iss", "https://evil"))), want: 401, challenge: "invalid_token"},
		"unknown signer":                   {hdr: bearer(jwtauthtest.Sign(t, jose.ES256, otherEC, "e", good)), want: 401, challenge: "invalid_token"},
		"wrong alg for the key":            {hdr: bearer(jwtauthtest.Sign(t, jose.ES256, ecKey, "r", good)), want: 401, challenge: "invalid_token"},
		"HS256 with public key":            {hdr: bearer(hs), want: 401, challenge: "not accepted"},
		"alg none":                         {hdr: bearer(none), want: 401, challenge: "not accepted"},
		"custom header":                    {hdr: map[string]string{"Host": "custom.test", "X-Token": jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good)}, want: 200},
		"no exp: valid forever by default": {hdr: bearer(unexpiring), want: 200},
		"no exp, expiry required":          {hdr: map[string]string{"Host": "strict.test", "Authorization": "Bearer " + unexpiring}, want: 401, challenge: "token has no expiry"},
		"exp, expiry required":             {hdr: map[string]string{"Host": "strict.test", "Authorization": "Bearer " + jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good)}, want: 200},
		"custom header ignores Authorization": {hdr: map[string]string{"Host": "custom.test", "Authorization": "Bearer " + jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good)},
			want: 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := hits.Load()
			resp, body := get(t, front.Client(), front.URL+"/", tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.want)
			}
			forwarded := hits.Load() != before
			if forwarded != (tc.want == 200) {
				t.Errorf("forwarded = %v with status %d", forwarded, tc.want)
			}
			if c := resp.Header.Get("WWW-Authenticate"); tc.want == 401 && !strings.Contains(c, tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want it to contain %q", c, tc.challenge)
			}
		})
	}

	// Claim headers replace what the client sent; a claim the token lacks
	// leaves its header absent.
	hdr := bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good))
	hdr["X-User"], hdr["X-Email"] = "mallory", "spoof@x"
	resp, _ := get(t, front.Client(), front.URL+"/", hdr)
	if u, g, e := resp.Header.Get("X-Saw-User"), resp.Header.Get("X-Saw-Groups"), resp.Header.Get("X-Saw-Email"); u != "alice" || g != "a,b" || e != "" {
		t.Errorf("backend saw X-User %q X-Groups %q X-Email %q, want alice, a,b and none", u, g, e)
	}

	// A Secret update that does not match the pin yet keeps the keys last
	// loaded for that Secret.
	p.SetSecretData(map[string][]byte{snapshot.JWTDataKey("team/keys"): []byte(`{"keys":[]}`)})
	rotated := snap
	rotated.Hosts[0].Routes[0].JWT = &snapshot.JWT{Secret: "team/keys", Hash: "0123456789abcdef", Audiences: []string{"api"}}
	p.Swap(compile(t, rotated))
	if resp, _ := get(t, front.Client(), front.URL+"/", bearer(jwtauthtest.Sign(t, jose.RS256, rsaKey, "r", good))); resp.StatusCode != 200 {
		t.Errorf("pin and data crossing: status %d, want 200 with the previous keys", resp.StatusCode)
	}
	if v := testutil.ToFloat64(p.jwt.rejected.WithLabelValues(JWTMissing)); v != 3 {
		t.Errorf("%s{missing} = %v, want 3 (no token, Basic, token in the wrong header)", MetricJWTRejected, v)
	}
	if v := testutil.ToFloat64(p.jwt.rejected.WithLabelValues(JWTKeysUnavailable)); v != 1 {
		t.Errorf("%s{keys_unavailable} = %v, want 1", MetricJWTRejected, v)
	}
}
