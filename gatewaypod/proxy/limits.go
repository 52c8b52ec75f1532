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

// Per-route, per-client limits (ingress-nginx limit-rps, limit-rpm,
// limit-connections, limit-burst-multiplier).
//
// Semantics, and where they differ from ingress-nginx:
//
//   - The client is the address after trusted-proxy processing (forwarded
//     .realIP): the TCP peer, or for a trusted peer the right-most untrusted
//     X-Forwarded-For entry. A client that is not behind a trusted proxy
//     cannot choose its bucket with X-Forwarded-For. Addresses are compared
//     after unmapping (::ffff:192.0.2.1 is 192.0.2.1); IPv6 clients are
//     limited per address, as nginx's $binary_remote_addr.
//   - RPS and RPM are token buckets (golang.org/x/time/rate) refilled at the
//     rate, holding rate × BurstMultiplier tokens (multiplier 0 means 5).
//     When both are set both apply: a request needs a token from each, and
//     a refused request consumes none. ingress-nginx uses limit_req with
//     burst and nodelay, which admits burst+1 requests at once; we admit
//     burst.
//   - A request refused for rate gets 429 Too Many Requests with
//     Retry-After (whole seconds until a token is available, at least 1).
//     ingress-nginx answers 503 by default (limit-req-status-code); 429 is
//     what clients and libraries retry on.
//   - Connections bounds the requests of one client in flight on the route
//     at once (nginx's limit_conn counts connections with a request being
//     processed, which is the same thing for HTTP/1.1). Upgraded
//     (WebSocket) connections count for as long as they are open. A request
//     refused for connections gets 503 Service Unavailable, as
//     ingress-nginx (limit-conn-status-code): there is no time at which
//     retrying is known to succeed, so no Retry-After either.
//   - Limits are checked after the allow/deny list and CORS preflights, so
//     denied clients and preflights consume no tokens (nginx runs limit_req
//     before allow/deny).
//   - State is per gateway replica, as in ingress-nginx.
//
// State lives in the Proxy, not in the router, keyed by the route's
// identity (limitKey), so it survives snapshot swaps. A route whose limits
// change gets fresh buckets: the key includes the limit values.
//
// Memory is bounded: a client entry idle for longer than it takes its
// buckets to fill up again (at least limitMinIdle, at most limitMaxIdle) is
// dropped by the janitor's sweep, which loses nothing because a new entry
// starts full; a route entry without clients is dropped too. Each route
// holds at most maxClients entries (limitMaxClientsPerRoute): a new client
// past the cap evicts the least recently seen of a small random sample of
// entries without requests in flight (approximate LRU, as nginx evicts the
// least recently used state when its zone is full). The evicted client
// starts over with a full bucket when it comes back, so under a flood of
// distinct addresses the limit gets more lenient, never stricter, for
// others. Only if every sampled entry has requests in flight is the new
// client refused with 503 (counted as kind "connections").

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

const (
	// limitMaxClientsPerRoute caps the client entries of one route.
	limitMaxClientsPerRoute = 100_000
	// limitMinIdle and limitMaxIdle bound how long an idle client entry is
	// kept (see limitRoute.idle).
	limitMinIdle = 3 * time.Minute
	limitMaxIdle = time.Hour
	// limitEvictSample is how many entries are looked at to evict one when a
	// route is at its cap.
	limitEvictSample = 16
	// defaultBurstMultiplier is ingress-nginx's limit-burst-multiplier default.
	defaultBurstMultiplier = 5
)

// Values of the kind label of MetricLimitedRequests.
const (
	LimitKindRPS         = "rps"
	LimitKindRPM         = "rpm"
	LimitKindConnections = "connections"
)

// limitKinds are the kind label values, in limitKind order.
var limitKinds = [...]string{LimitKindRPS, LimitKindRPM, LimitKindConnections}

type limitKind int

const (
	kindRPS limitKind = iota
	kindRPM
	kindConnections
)

// hasRequestLimits reports whether l limits rate or connections (body size
// is handled elsewhere).
func hasRequestLimits(l *snapshot.Limits) bool {
	return l != nil && (l.RPS > 0 || l.RPM > 0 || l.Connections > 0)
}

// limitKey identifies a route's limiter across snapshots: the Ingress, the
// path, its type and backend (the router does not tell which virtual host a
// route belongs to, so routes of one Ingress with the same path and backend
// on different hosts share buckets; ingress-nginx shares one zone across
// all the locations of an Ingress), and the limit values.
type limitKey struct {
	source, path, backend string
	pathType              snapshot.PathType
	rps, rpm, conns, mult int
}

func keyOf(r *snapshot.Route) limitKey {
	l := r.Limits
	mult := l.BurstMultiplier
	if mult <= 0 {
		mult = defaultBurstMultiplier
	}
	return limitKey{source: r.Source, path: r.Path, backend: r.Backend.Name, pathType: r.PathType,
		rps: l.RPS, rpm: l.RPM, conns: l.Connections, mult: mult}
}

// limiters holds the limit state of every route.
type limiters struct {
	now        func() time.Time
	maxClients int

	mu     sync.Mutex
	routes map[limitKey]*limitRoute
}

func newLimiters() *limiters {
	return &limiters{now: time.Now, maxClients: limitMaxClientsPerRoute, routes: map[limitKey]*limitRoute{}}
}

// limitRoute is the state of one route's limits.
type limitRoute struct {
	rps, rpm     rate.Limit
	rpsB, rpmB   int
	conns        int
	idle         time.Duration // entries idle longer are swept
	l            *limiters
	mu           sync.Mutex
	clients      map[netip.Addr]*limitClient
	removed      bool // set (under mu and l.mu) when dropped from l.routes
	lastUsedNano atomic.Int64
}

// limitClient is one client address on one route.
type limitClient struct {
	rps, rpm *rate.Limiter // nil when the route has no such limit
	inflight int
	lastSeen time.Time
}

// route returns the state of k, creating it.
func (ls *limiters) route(k limitKey) *limitRoute {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if lr := ls.routes[k]; lr != nil {
		return lr
	}
	lr := &limitRoute{conns: k.conns, l: ls, clients: map[netip.Addr]*limitClient{}, idle: limitMinIdle}
	fill := func(perSec float64, burst int) {
		if d := time.Duration(float64(burst) / perSec * float64(time.Second)); d > lr.idle {
			lr.idle = d
		}
	}
	if k.rps > 0 {
		lr.rps, lr.rpsB = rate.Limit(k.rps), k.rps*k.mult
		fill(float64(k.rps), lr.rpsB)
	}
	if k.rpm > 0 {
		lr.rpm, lr.rpmB = rate.Limit(float64(k.rpm)/60), k.rpm*k.mult
		fill(float64(k.rpm)/60, lr.rpmB)
	}
	lr.idle = min(lr.idle, limitMaxIdle)
	lr.lastUsedNano.Store(ls.now().UnixNano())
	ls.routes[k] = lr
	return lr
}

// admission is the outcome of limitRoute.admit.
type admission struct {
	ok bool
	// kind is what refused the request.
	kind limitKind
	// retryAfter is, for a rate refusal, when a token will be available.
	retryAfter time.Duration
	// stale: the route was swept meanwhile; look it up again.
	stale bool
}

// admit decides whether the client at a may send one more request. When
// ok and the route limits connections, release must be called when the
// request is done.
func (lr *limitRoute) admit(a netip.Addr) admission {
	now := lr.l.now()
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.removed {
		return admission{stale: true}
	}
	lr.lastUsedNano.Store(now.UnixNano())
	c := lr.clients[a]
	if c == nil {
		if len(lr.clients) >= lr.l.maxClients && !lr.evictOne() {
			return admission{kind: kindConnections}
		}
		c = &limitClient{}
		if lr.rps > 0 {
			c.rps = rate.NewLimiter(lr.rps, lr.rpsB)
		}
		if lr.rpm > 0 {
			c.rpm = rate.NewLimiter(lr.rpm, lr.rpmB)
		}
		lr.clients[a] = c
	}
	c.lastSeen = now
	if lr.conns > 0 && c.inflight >= lr.conns {
		return admission{kind: kindConnections}
	}
	// Reserve from both buckets; if either would make the request wait,
	// give both tokens back: a refused request costs nothing.
	var rs, rm *rate.Reservation
	var ds, dm time.Duration
	if c.rps != nil {
		rs = c.rps.ReserveN(now, 1)
		ds = reservationDelay(rs, now)
	}
	if c.rpm != nil {
		rm = c.rpm.ReserveN(now, 1)
		dm = reservationDelay(rm, now)
	}
	if ds > 0 || dm > 0 {
		if rs != nil {
			rs.CancelAt(now)
		}
		if rm != nil {
			rm.CancelAt(now)
		}
		if ds >= dm {
			return admission{kind: kindRPS, retryAfter: ds}
		}
		return admission{kind: kindRPM, retryAfter: dm}
	}
	if lr.conns > 0 {
		c.inflight++
	}
	return admission{ok: true}
}

// reservationDelay is how long r makes the caller wait; a reservation that
// can never be met (burst 0, not possible from the snapshot) waits forever.
func reservationDelay(r *rate.Reservation, now time.Time) time.Duration {
	if !r.OK() {
		return time.Duration(math.MaxInt64)
	}
	return r.DelayFrom(now)
}

// release ends a request admitted by admit on a route with a connection
// limit.
func (lr *limitRoute) release(a netip.Addr) {
	now := lr.l.now()
	lr.mu.Lock()
	if c := lr.clients[a]; c != nil && c.inflight > 0 {
		c.inflight--
		c.lastSeen = now
	}
	lr.mu.Unlock()
}

// evictOne drops the least recently seen of a sample of clients without
// requests in flight; false if it found none. lr.mu is held.
func (lr *limitRoute) evictOne() bool {
	var victim netip.Addr
	var oldest *limitClient
	n := 0
	for a, c := range lr.clients { // map iteration starts at a random entry
		if n++; n > limitEvictSample {
			break
		}
		if c.inflight == 0 && (oldest == nil || c.lastSeen.Before(oldest.lastSeen)) {
			victim, oldest = a, c
		}
	}
	if oldest == nil {
		return false
	}
	delete(lr.clients, victim)
	return true
}

// sweep drops client entries idle for longer than their route's idle time,
// and routes left without clients that were not used for as long.
func (ls *limiters) sweep() {
	now := ls.now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for k, lr := range ls.routes {
		lr.mu.Lock()
		for a, c := range lr.clients {
			if c.inflight == 0 && now.Sub(c.lastSeen) > lr.idle {
				delete(lr.clients, a)
			}
		}
		if len(lr.clients) == 0 && now.Sub(time.Unix(0, lr.lastUsedNano.Load())) > lr.idle {
			lr.removed = true
			delete(ls.routes, k)
		}
		lr.mu.Unlock()
	}
}

// clients is the number of client entries of all routes (for tests).
func (ls *limiters) clients() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for _, lr := range ls.routes {
		lr.mu.Lock()
		n += len(lr.clients)
		lr.mu.Unlock()
	}
	return n
}

// limitRoute returns the limiter of route r (which has request limits),
// cached per router.
func (p *Proxy) limitRoute(st *state, r *snapshot.Route, fresh bool) *limitRoute {
	if !fresh {
		if v, ok := st.limits.Load(r); ok {
			return v.(*limitRoute)
		}
	}
	lr := p.limits.route(keyOf(r))
	st.limits.Store(r, lr)
	return lr
}

// applyLimits admits the request of client a (unmapped) on route r, or answers it.
// It returns the route limiter to release when done (nil when none), and
// the status sent when refused (0 when admitted).
func (p *Proxy) applyLimits(w http.ResponseWriter, st *state, r *snapshot.Route, a netip.Addr) (*limitRoute, int) {
	for try := 0; try < 3; try++ {
		lr := p.limitRoute(st, r, try > 0)
		ad := lr.admit(a)
		switch {
		case ad.stale:
			continue // swept between lookup and admit: look it up again
		case ad.ok:
			if lr.conns > 0 {
				return lr, 0
			}
			return nil, 0
		}
		p.metrics.limited[ad.kind].Inc()
		if ad.kind == kindConnections {
			// 503, as ingress-nginx's limit-conn-status-code default.
			return nil, p.reply(w, http.StatusServiceUnavailable, "too many concurrent requests from this client")
		}
		// 429 with Retry-After for rate limits (ingress-nginx answers 503).
		secs := max(int64(math.Ceil(ad.retryAfter.Seconds())), 1)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		return nil, p.reply(w, http.StatusTooManyRequests, "too many requests from this client")
	}
	return nil, 0 // unreachable in practice: admit without limiting
}
