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

package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/portico-dev/portico/gatewaypod/jwtauth/jwtauthtest"
)

// testKeys are one key of each accepted kind, made once.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{r, e, d}
}

// jwks is the public JWKS of k, kids "rsa", "ec", "ed".
func (k testKeys) jwks(t testing.TB) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa", Use: "sig"},
		{Key: k.ec.Public(), KeyID: "ec", Algorithm: string(jose.ES256)},
		{Key: k.ed.Public(), KeyID: "ed"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unsigned is an alg "none" token.
func unsigned(claims any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

func pemPublic(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	k := newTestKeys(t)
	set, err := ParseKeys(k.jwks(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ok := map[string]any{"iss": "https://idp", "aud": []string{"api", "web"}, "sub": "alice",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "email": "a@x"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	policy := Policy{Issuer: "https://idp", Audiences: []string{"api"}}
	rsaPEM := pemPublic(t, k.rsa.Public())
	tests := map[string]struct {
		token   string
		wantErr error // nil: valid
	}{
		"RS256":                           {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", ok)},
		"PS256":                           {token: jwtauthtest.Sign(t, jose.PS256, k.rsa, "rsa", ok)},
		"ES256":                           {token: jwtauthtest.Sign(t, jose.ES256, k.ec, "ec", ok)},
		"EdDSA":                           {token: jwtauthtest.Sign(t, jose.EdDSA, k.ed, "ed", ok)},
		"expired":                         {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("exp", now.Add(-time.Minute).Unix())), wantErr: jwt.ErrExpired},
		"expired within leeway":           {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("exp", now.Add(-10*time.Second).Unix()))},
		"not valid yet":                   {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("nbf", now.Add(time.Minute).Unix())), wantErr: jwt.ErrNotValidYet},
		"wrong issuer":                    {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("iss", "https://evil")), wantErr: jwt.ErrInvalidIssuer},
		"wrong audience":                  {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("aud", "other")), wantErr: jwt.ErrInvalidAudience},
		"unknown kid":                     {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "nope", ok), wantErr: ErrNoKey},
		"no kid, several keys":            {token: jwtauthtest.Sign(t, jose.RS256, k.rsa, "", ok), wantErr: ErrNoKey},
		"signed by another key":           {token: jwtauthtest.Sign(t, jose.RS256, newTestKeys(t).rsa, "rsa", ok), wantErr: ErrSignature},
		"alg other than the key's":        {token: jwtauthtest.Sign(t, jose.ES384, mustEC384(t), "ec", ok), wantErr: ErrNoKey},
		"EC token under RSA kid":          {token: jwtauthtest.Sign(t, jose.ES256, k.ec, "rsa", ok), wantErr: ErrSignature},
		"alg none":                        {token: unsigned(ok), wantErr: ErrAlgorithm},
		"HS256 keyed with the public key": {token: jwtauthtest.Sign(t, jose.HS256, rsaPEM, "rsa", ok), wantErr: ErrAlgorithm},
		"garbage":                         {token: "a.b.c", wantErr: ErrMalformed},
		"empty":                           {token: "", wantErr: ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			claims, err := set.Verify(tc.token, policy, now)
			if tc.wantErr == nil {
				if err != nil || claims["sub"] != "alice" || claims["email"] != "a@x" {
					t.Fatalf("Verify = %v, %v; want the claims", claims, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	// Without "exp" a token never expires: accepted by default, refused
	// when the policy requires an expiry; an "exp" present is checked
	// either way.
	noExp := with()
	delete(noExp, "exp")
	unexpiring := jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", noExp)
	if _, err := set.Verify(unexpiring, policy, now); err != nil {
		t.Errorf("token without exp, expiry not required: %v", err)
	}
	strict := policy
	strict.RequireExpiry = true
	if _, err := set.Verify(unexpiring, strict, now); !errors.Is(err, ErrNoExpiry) {
		t.Errorf("token without exp, expiry required: %v, want ErrNoExpiry", err)
	}
	if _, err := set.Verify(jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", ok), strict, now); err != nil {
		t.Errorf("token with exp, expiry required: %v", err)
	}
	if _, err := set.Verify(jwtauthtest.Sign(t, jose.RS256, k.rsa, "rsa", with("exp", now.Add(-time.Minute).Unix())), strict, now); !errors.Is(err, jwt.ErrExpired) {
		t.Errorf("expired token, expiry required: %v, want ErrExpired", err)
	}

	// A PEM key set has one key, so a token without kid finds it.
	pemSet, err := ParseKeys(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pemSet.Verify(jwtauthtest.Sign(t, jose.RS256, k.rsa, "", ok), Policy{}, now); err != nil {
		t.Errorf("PEM key, token without kid: %v", err)
	}
}

func mustEC384(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeys(t *testing.T) {
	k := newTestKeys(t)
	jwk := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	tests := map[string]struct {
		in      []byte
		wantErr string
	}{
		"jwks":                {in: k.jwks(t)},
		"pem rsa":             {in: pemPublic(t, k.rsa.Public())},
		"pem ed25519":         {in: pemPublic(t, k.ed.Public())},
		"private key in jwks": {in: jwk(jose.JSONWebKey{Key: k.rsa, KeyID: "p"}), wantErr: "not a public"},
		"symmetric in jwks":   {in: jwk(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s"}), wantErr: "not a public"},
		"encryption key":      {in: jwk(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "e", Use: "enc"}), wantErr: "use"},
		"empty jwks":          {in: []byte(`{"keys":[]}`), wantErr: "no keys"},
		"not json":            {in: []byte(`keys`), wantErr: "JWKS"},
		"pem private key":     {in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), wantErr: "PUBLIC KEY"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := ParseKeys(tc.in)
			if tc.wantErr == "" {
				if err != nil || s.Len() == 0 {
					t.Fatalf("ParseKeys = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
