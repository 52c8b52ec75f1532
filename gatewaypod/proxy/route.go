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
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// target is a backend resolved against the proxy's per-endpoint state,
// with everything per request that depends only on the backend (its
// balancing policy, affinity cookies, metric children) computed once per
// router.
type target struct {
	pool  *balancer.Pool
	hosts []*upstreamHost // parallel to pool.Endpoints
	// up is the route's TLS / HTTP/2 upstream configuration; nil for HTTP.
	up       *upstreamConfig
	policy   balancer.Policy
	affinity *affinity // nil without cookie affinity
	// duration is the request duration histogram child per code class.
	duration [len(codeClasses)]prometheus.Observer
	// role counts requests by backend role; nil when the route has no canary.
	role prometheus.Counter
}

// affinity pins a client to an endpoint with a cookie whose value is a
// stable id of the endpoint address (the same in every gateway pod).
type affinity struct {
	cookie    string
	ids       map[string]int // cookie value -> endpoint index
	setCookie []string       // Set-Cookie value per endpoint
}

// target returns the balancing target of d.Backend, building it on first
// use. The key is the backend pointer: a route's backend and each canary's
// are distinct pointers of the router, so the balancer (the route's or the
// canary's) is the same for every request that reaches a given pointer.
func (p *Proxy) target(st *state, d *router.Decision) *target {
	b := d.Backend
	if t, ok := st.targets.Load(b); ok {
		return t.(*target)
	}
	pool := p.registry.Pool(b.Name, b.Endpoints, nil)
	t := &target{pool: pool, hosts: make([]*upstreamHost, len(pool.Endpoints)), policy: balancer.RoundRobin{}}
	if d.Route != nil {
		t.up = p.upstreams.config(d.Route.Upstream, b)
	}
	for i, ep := range pool.Endpoints {
		t.hosts[i] = p.pools.host(ep.Addr, ep, t.up)
	}
	if bal := d.Balancer; bal != nil {
		switch {
		case bal.HashBy != "":
			t.policy = balancer.ConsistentHash{Key: balancer.NginxKey(bal.HashBy)}
		case bal.Policy == snapshot.BalanceLeastConn, bal.Policy == snapshot.BalanceEWMA:
			// EWMA is approximated by least request (power of two choices).
			t.policy = balancer.LeastRequest{}
		}
		if a := bal.Affinity; a != nil && a.Cookie != "" {
			t.affinity = newAffinity(a, pool)
		}
	}
	t.duration = p.metrics.durationFor(b.Name)
	if d.Route != nil && len(d.Route.Canaries) > 0 {
		t.role = p.metrics.roleFor(d.Route, d.Canary != nil)
	}
	actual, _ := st.targets.LoadOrStore(b, t)
	return actual.(*target)
}

func newAffinity(a *snapshot.Affinity, pool *balancer.Pool) *affinity {
	af := &affinity{cookie: a.Cookie, ids: map[string]int{}, setCookie: make([]string, len(pool.Endpoints))}
	for i, ep := range pool.Endpoints {
		sum := sha256.Sum256([]byte(ep.Addr))
		id := hex.EncodeToString(sum[:8])
		af.ids[id] = i
		c := &http.Cookie{Name: a.Cookie, Value: id, Path: a.Path, Domain: a.Domain, Secure: a.Secure, HttpOnly: true, MaxAge: a.MaxAgeSeconds}
		if c.Path == "" {
			c.Path = "/"
		}
		switch strings.ToLower(a.SameSite) {
		case "strict":
			c.SameSite = http.SameSiteStrictMode
		case "lax":
			c.SameSite = http.SameSiteLaxMode
		case "none":
			c.SameSite = http.SameSiteNoneMode
		}
		v := c.String()
		if a.ExpiresSeconds > 0 {
			// A fixed date would be wrong for later responses; Max-Age is
			// what browsers prefer anyway.
			if a.MaxAgeSeconds == 0 {
				v += "; Max-Age=" + strconv.Itoa(a.ExpiresSeconds)
			}
		}
		af.setCookie[i] = v
	}
	return af
}

// pick selects the endpoint for req, and the Set-Cookie value to send when
// the client is (re)pinned by affinity.
func (t *target) pick(req *http.Request) (int, string) {
	if af := t.affinity; af != nil {
		if c, err := req.Cookie(af.cookie); err == nil {
			if i, ok := af.ids[c.Value]; ok && t.pool.Endpoints[i].Available(time.Now()) {
				return i, ""
			}
		}
		i := t.policy.Select(t.pool, req)
		if i < 0 {
			return i, ""
		}
		return i, af.setCookie[i]
	}
	return t.policy.Select(t.pool, req), ""
}

// clientAddr is the client address after trusted-proxy processing.
func clientAddr(f *forwarded) netip.Addr {
	a, err := netip.ParseAddr(f.realIP)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// corsReply holds the CORS headers of one allowed cross-origin request.
type corsReply struct {
	c      *snapshot.CORS
	origin string // the Access-Control-Allow-Origin value
}

// decorate sets the CORS headers of a normal response, replacing any the
// backend sent.
func (cr *corsReply) decorate(h http.Header) {
	h["Access-Control-Allow-Origin"] = []string{cr.origin}
	if cr.origin != "*" {
		h["Vary"] = append(h["Vary"], "Origin")
	}
	if cr.c.AllowCredentials {
		h["Access-Control-Allow-Credentials"] = []string{"true"}
	}
	if len(cr.c.ExposeHeaders) > 0 {
		h["Access-Control-Expose-Headers"] = []string{strings.Join(cr.c.ExposeHeaders, ", ")}
	}
}

// isPreflight reports a CORS preflight request.
func isPreflight(req *http.Request) bool {
	return req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight at the edge with 204.
func (p *Proxy) preflight(w http.ResponseWriter, req *http.Request, cr *corsReply) int {
	h := w.Header()
	cr.decorate(h)
	delete(h, "Access-Control-Expose-Headers")
	if len(cr.c.AllowMethods) > 0 {
		h.Set("Access-Control-Allow-Methods", strings.Join(cr.c.AllowMethods, ", "))
	} else {
		h.Set("Access-Control-Allow-Methods", req.Header.Get("Access-Control-Request-Method"))
	}
	if len(cr.c.AllowHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(cr.c.AllowHeaders, ", "))
	} else if rh := req.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	if cr.c.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(cr.c.MaxAgeSeconds))
	}
	h.Set("Server", ServerHeader)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// redirect answers a redirect decision.
func (p *Proxy) redirect(w http.ResponseWriter, rd *router.RedirectDecision) int {
	w.Header().Set("Location", rd.Location)
	return p.reply(w, rd.Code, http.StatusText(rd.Code))
}

// upstreamPath is the escaped path to forward (the query goes as is).
func upstreamPath(d *router.Decision, fwdPath string) string {
	if d.Rewritten {
		return (&url.URL{Path: d.Path}).EscapedPath()
	}
	return fwdPath
}
