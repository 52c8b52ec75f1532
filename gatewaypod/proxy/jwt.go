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
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/jwtauth"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// MetricJWTRejected counts requests refused by a route's JWT policy, by
// reason (JWTMissing, JWTInvalid: 401; JWTKeysUnavailable: 503).
const MetricJWTRejected = "portico_gatewaypod_jwt_rejected_total"

// Reasons of MetricJWTRejected.
const (
	JWTMissing         = "missing"
	JWTInvalid         = "invalid"
	JWTKeysUnavailable = "keys_unavailable"
)

// jwtRealm is the realm of WWW-Authenticate challenges.
const jwtRealm = `Bearer realm="portico"`

// jwtKeys holds the instance Secret's data and the key sets parsed from
// it. A route pins its keys by hash; when the data does not match the pin
// yet (the Secret and the snapshot update separately), the key set last
// loaded for the same source Secret keeps verifying, as CertStore keeps a
// certificate, and a route with no keys at all answers 503 (never lets a
// request through).
type jwtKeys struct {
	data     atomic.Pointer[map[string][]byte]
	byHash   sync.Map // secret + "\x00" + hash -> *jwtauth.KeySet
	lastGood sync.Map // secret -> *jwtauth.KeySet
	warned   sync.Map // secret + "\x00" + hash -> struct{}: logged once
	rejected *prometheus.CounterVec
}

func newJWTKeys() *jwtKeys {
	k := &jwtKeys{rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricJWTRejected,
		Help: "Requests refused by a route's JWT policy, by reason: missing or invalid token (401), keys unavailable (503).",
	}, []string{"reason"})}
	for _, r := range []string{JWTMissing, JWTInvalid, JWTKeysUnavailable} {
		k.rejected.WithLabelValues(r)
	}
	return k
}

// SetSecretData gives the proxy the instance Secret's data, which holds
// the JWT verification keys of the snapshot's routes (snapshot.JWTDataKey).
// The map must not be modified afterwards.
func (p *Proxy) SetSecretData(data map[string][]byte) { p.jwt.data.Store(&data) }

// keySet returns the keys of j.
func (p *Proxy) keySet(j *snapshot.JWT) (*jwtauth.KeySet, error) {
	id := j.Secret + "\x00" + j.Hash
	if s, ok := p.jwt.byHash.Load(id); ok {
		return s.(*jwtauth.KeySet), nil
	}
	var err error
	if d := p.jwt.data.Load(); d == nil {
		err = errors.New("the instance Secret has not been read yet")
	} else if b, ok := (*d)[snapshot.JWTDataKey(j.Secret)]; !ok {
		err = errors.New("no " + snapshot.JWTDataKey(j.Secret) + " in the instance Secret")
	} else if h := snapshot.DataHash(b); h != j.Hash {
		err = errors.New("key material hash " + h + " does not match the pinned " + j.Hash)
	} else {
		s, perr := jwtauth.ParseKeys(b)
		if perr == nil {
			p.jwt.loaded(j.Secret, id, s)
			return s, nil
		}
		err = perr
	}
	prev, ok := p.jwt.lastGood.Load(j.Secret)
	if _, seen := p.jwt.warned.LoadOrStore(id, struct{}{}); !seen {
		p.log.Warn("JWT keys not loaded", "secret", j.Secret, "hash", j.Hash, "err", err, "keptPrevious", ok)
	}
	if ok {
		return prev.(*jwtauth.KeySet), nil
	}
	return nil, err
}

// loaded records s as the keys of secret at id, forgetting the key sets
// and warnings of the Secret's older contents: the instance Secret holds
// one content per Secret at a time, so the caches stay one entry per Secret.
func (k *jwtKeys) loaded(secret, id string, s *jwtauth.KeySet) {
	prefix := secret + "\x00"
	for _, m := range []*sync.Map{&k.byHash, &k.warned} {
		m.Range(func(key, _ any) bool {
			if ks := key.(string); ks != id && strings.HasPrefix(ks, prefix) {
				m.Delete(key)
			}
			return true
		})
	}
	k.byHash.Store(id, s)
	k.lastGood.Store(secret, s)
}

// checkJWT enforces j on req: it returns 0 and sets the claim headers when
// the token is valid, else writes the refusal and returns its status.
func (p *Proxy) checkJWT(w http.ResponseWriter, req *http.Request, j *snapshot.JWT) int {
	token, found := bearerToken(req, j.Header)
	if !found {
		p.jwt.rejected.WithLabelValues(JWTMissing).Inc()
		w.Header().Set("WWW-Authenticate", jwtRealm)
		return p.reply(w, http.StatusUnauthorized, "a bearer token is required")
	}
	keys, err := p.keySet(j)
	if err != nil {
		p.jwt.rejected.WithLabelValues(JWTKeysUnavailable).Inc()
		return p.reply(w, http.StatusServiceUnavailable, "token verification keys are not available")
	}
	claims, err := keys.Verify(token, jwtauth.Policy{Issuer: j.Issuer, Audiences: j.Audiences, RequireExpiry: j.RequireExpiry}, time.Now())
	if err != nil {
		p.jwt.rejected.WithLabelValues(JWTInvalid).Inc()
		w.Header().Set("WWW-Authenticate", jwtRealm+`, error="invalid_token", error_description="`+challengeText(err)+`"`)
		return p.reply(w, http.StatusUnauthorized, "invalid token")
	}
	for _, ch := range j.ClaimsToHeaders {
		req.Header.Del(ch.Header)
		if v, ok := claimText(claims[ch.Claim]); ok {
			req.Header.Set(ch.Header, v)
		}
	}
	return 0
}

// bearerToken finds the token: "Authorization: Bearer <token>" when header
// is "", else the value of header, with an optional "Bearer " prefix.
func bearerToken(req *http.Request, header string) (string, bool) {
	name := header
	if name == "" {
		name = "Authorization"
	}
	v := strings.TrimSpace(req.Header.Get(name))
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	} else if header == "" {
		return "", false // another scheme, or none
	}
	return v, v != ""
}

// challengeText is err as a quoted-string-safe error_description.
func challengeText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "go-jose") {
		s = s[i+2:]
	}
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
}

// claimText renders a claim as a header value: strings as they are,
// numbers and booleans in JSON, lists of strings joined by commas, other
// values as JSON. A value with control characters is dropped.
func claimText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			es, ok := e.(string)
			if !ok {
				b, _ := json.Marshal(x)
				parts = []string{string(b)}
				break
			}
			parts = append(parts, es)
		}
		s = strings.Join(parts, ",")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return "", false
		}
	}
	return s, true
}
