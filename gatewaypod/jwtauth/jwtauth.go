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

// Package jwtauth verifies JSON Web Tokens against a set of public keys,
// with github.com/go-jose/go-jose/v4 doing the cryptography. It is shared by
// the compiler (which checks a Secret's key material before shipping it) and
// gatewaypod (which verifies every request of a protected route).
//
// Only asymmetric signatures are accepted (RS*, PS*, ES*, EdDSA): "none" and
// the HMAC algorithms are refused before any key is looked at, so a token
// signed with HS256 using the public key as the HMAC secret (the classic
// algorithm confusion) never verifies, and a key set holding a symmetric or
// private key is refused as a whole.
package jwtauth

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Keys of the source Secret that may hold the verification keys; exactly
// one of them must be set.
const (
	// SecretKeyJWKS holds a JWKS document (RFC 7517) of public keys.
	SecretKeyJWKS = "jwks.json"
	// SecretKeyPEM holds one PEM "PUBLIC KEY" (PKIX: RSA, ECDSA or Ed25519).
	SecretKeyPEM = "key.pem"
)

// Algorithms are the signature algorithms accepted.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// KeySet is a parsed set of public verification keys. It is immutable.
type KeySet struct {
	keys []jose.JSONWebKey
}

// Len is the number of keys.
func (s *KeySet) Len() int { return len(s.keys) }

// ParseKeys reads key material: a JWKS document, or a PEM public key. Every
// key must be a valid public key meant for signatures.
func ParseKeys(b []byte) (*KeySet, error) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("-----BEGIN")) {
		blk, rest := pem.Decode(t)
		if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) > 0 {
			return nil, errors.New(`want exactly one PEM block of type "PUBLIC KEY"`)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM public key: %w", err)
		}
		k := jose.JSONWebKey{Key: pub}
		if !k.IsPublic() || !k.Valid() {
			return nil, fmt.Errorf("PEM public key of type %T is not RSA, ECDSA or Ed25519", pub)
		}
		return &KeySet{keys: []jose.JSONWebKey{k}}, nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(t, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS holds no keys")
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		if !k.IsPublic() || !k.Valid() {
			return nil, fmt.Errorf("JWKS key %d (kid %q) is not a public RSA, ECDSA or Ed25519 key", i, k.KeyID)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("JWKS key %d (kid %q) has use %q, not sig", i, k.KeyID, k.Use)
		}
	}
	return &KeySet{keys: set.Keys}, nil
}

// Policy is what a token must satisfy besides its signature.
type Policy struct {
	// Issuer, when set, must equal "iss".
	Issuer string
	// Audiences, when set, must intersect "aud".
	Audiences []string
	// RequireExpiry refuses a token without "exp".
	RequireExpiry bool
}

// Errors of Verify that a client may be told about (RFC 6750 error_description).
var (
	ErrMalformed = errors.New("malformed token")
	ErrAlgorithm = errors.New("signature algorithm not accepted")
	ErrNoKey     = errors.New("no key matches the token")
	ErrSignature = errors.New("invalid signature")
	ErrNoExpiry  = errors.New("token has no expiry")
)

// Verify checks the token's signature with s, then its exp, nbf, iat, iss
// and aud at now, and returns all its claims.
func (s *KeySet) Verify(token string, p Policy, now time.Time) (map[string]any, error) {
	tok, err := jwt.ParseSigned(token, Algorithms)
	if err != nil {
		if isAlgError(token) {
			return nil, ErrAlgorithm
		}
		return nil, ErrMalformed
	}
	if len(tok.Headers) != 1 {
		return nil, ErrMalformed
	}
	h := tok.Headers[0]
	key := s.key(h.KeyID, h.Algorithm)
	if key == nil {
		return nil, ErrNoKey
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		return nil, ErrSignature
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: p.Issuer, AnyAudience: p.Audiences, Time: now}, Leeway); err != nil {
		return nil, err
	}
	if p.RequireExpiry && std.Expiry == nil {
		return nil, ErrNoExpiry
	}
	return all, nil
}

// key returns the key for a token header: the one with its kid, or, when
// the token has no kid, the only key. A key that names an algorithm must
// name the token's.
func (s *KeySet) key(kid, alg string) *jose.JSONWebKey {
	var k *jose.JSONWebKey
	switch {
	case kid == "" && len(s.keys) == 1:
		k = &s.keys[0]
	case kid != "":
		for i := range s.keys {
			if s.keys[i].KeyID == kid {
				k = &s.keys[i]
				break
			}
		}
	}
	if k == nil || k.Algorithm != "" && k.Algorithm != alg {
		return nil
	}
	return k
}

// isAlgError tells a well-formed token with a refused algorithm ("none",
// HS256 ...) from garbage, for a clearer error.
func isAlgError(token string) bool {
	_, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{"none", jose.HS256, jose.HS384, jose.HS512})
	return err == nil
}
