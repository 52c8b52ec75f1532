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

// Package balancer chooses one endpoint of a backend for each request and
// keeps the per-endpoint runtime state that choice depends on: requests in
// flight, consecutive failures and passive-health ejection.
//
// State lives in a Registry keyed by endpoint address, outside the router, so
// a snapshot swap (a new router, new Pools) keeps it: an endpoint ejected
// before the swap stays ejected after it, a round-robin rotation continues.
// A Pool is the immutable view of one backend's endpoints that policies pick
// from; a Policy implements one method, Select, with atomic counters only
// (smooth weighted round robin takes a short per-pool lock when weights
// differ), after caddy's reverseproxy selection policies.
package balancer

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// PassiveHealth says when an endpoint is taken out of rotation because of the
// responses it gives, and for how long. The zero value disables it.
type PassiveHealth struct {
	// MaxFailures consecutive failures (connect errors, and 5xx responses
	// when reported) eject the endpoint. 0 disables passive health.
	MaxFailures int
	// BaseEjection is how long the first ejection lasts; each further
	// ejection without a success in between doubles it, up to MaxEjection.
	BaseEjection time.Duration
	// MaxEjection caps the ejection time; 0 means 10 × BaseEjection.
	MaxEjection time.Duration
}

// DefaultPassiveHealth ejects after 5 consecutive failures for 10 s at first
// (nginx's max_fails/fail_timeout spirit), up to 100 s.
var DefaultPassiveHealth = PassiveHealth{MaxFailures: 5, BaseEjection: 10 * time.Second}

// Endpoint is the shared runtime state of one upstream address. All methods
// are safe for concurrent use.
type Endpoint struct {
	// Addr is the "host:port" the state belongs to.
	Addr string

	health       *PassiveHealth
	inflight     atomic.Int64
	fails        atomic.Int32 // consecutive failures since the last success
	ejections    atomic.Int32 // consecutive ejections since the last success
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 = in rotation
	lastUsed     atomic.Int64 // unix nanoseconds of the last Acquire or Pool build

	unhealthy        atomic.Int32  // active checkers reporting e unhealthy (see CheckFailed)
	passiveEjections atomic.Uint64 // ejections by ReportFailure, ever
	activeEjections  atomic.Uint64 // healthy -> unhealthy transitions of its checkers, ever
}

// InFlight is the number of requests currently forwarded to e.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Acquire counts a request forwarded to e; call Release when it ends.
func (e *Endpoint) Acquire() { e.inflight.Add(1) }

// Release ends a request counted by Acquire.
func (e *Endpoint) Release() { e.inflight.Add(-1) }

// Available reports whether e is in rotation at now: not ejected by
// passive health and not failing an active health check.
func (e *Endpoint) Available(now time.Time) bool {
	u := e.ejectedUntil.Load()
	return (u == 0 || now.UnixNano() >= u) && e.unhealthy.Load() == 0
}

// available is Available without reading the clock unless e was ejected.
func (e *Endpoint) available() bool {
	u := e.ejectedUntil.Load()
	return (u == 0 || time.Now().UnixNano() >= u) && e.unhealthy.Load() == 0
}

// Ejected reports whether e is out of rotation right now (passive
// ejection or a failing active check).
func (e *Endpoint) Ejected() bool { return !e.available() }

// Unhealthy reports whether an active health check holds e out of rotation.
func (e *Endpoint) Unhealthy() bool { return e.unhealthy.Load() > 0 }

// CheckFailed records that one active health checker now reports e
// unhealthy (counted as an ejection); CheckRecovered undoes one such mark.
// While any checker's mark stands, policies skip e. The checkers themselves
// live in gatewaypod/healthcheck: this package does no I/O.
func (e *Endpoint) CheckFailed() {
	e.unhealthy.Add(1)
	e.activeEjections.Add(1)
}

// CheckRecovered removes one mark set by CheckFailed.
func (e *Endpoint) CheckRecovered() { e.unhealthy.Add(-1) }

// TakeCheckMark moves one CheckFailed mark from old to e without counting
// another ejection: old was swept and e recreated while a checker held it.
func (e *Endpoint) TakeCheckMark(old *Endpoint) {
	old.unhealthy.Add(-1)
	e.unhealthy.Add(1)
}

// Ejections returns how many times e was taken out of rotation by passive
// health and by active checks since its state was created.
func (e *Endpoint) Ejections() (passive, active uint64) {
	return e.passiveEjections.Load(), e.activeEjections.Load()
}

// ReportSuccess records a good response: the failure streak ends and an
// ejected endpoint that answered (after its backoff) is back for good.
func (e *Endpoint) ReportSuccess() {
	if e.fails.Load() != 0 {
		e.fails.Store(0)
	}
	if e.ejections.Load() != 0 || e.ejectedUntil.Load() != 0 {
		e.ejections.Store(0)
		e.ejectedUntil.Store(0)
	}
}

// ReportFailure records a connect error or 5xx at now. It returns true when
// this failure ejected the endpoint.
func (e *Endpoint) ReportFailure(now time.Time) bool {
	h := e.health
	if h == nil || h.MaxFailures <= 0 {
		return false
	}
	if e.fails.Add(1) < int32(h.MaxFailures) {
		return false
	}
	e.fails.Store(0)
	n := e.ejections.Add(1)
	d := h.BaseEjection
	if d <= 0 {
		d = DefaultPassiveHealth.BaseEjection
	}
	maxD := h.MaxEjection
	if maxD <= 0 {
		maxD = 10 * d
	}
	for i := int32(1); i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	e.ejectedUntil.Store(now.Add(d).UnixNano())
	e.passiveEjections.Add(1)
	return true
}

// Registry owns the Endpoint state of a process, keyed by address. It
// outlives routers: build Pools from it after every swap.
type Registry struct {
	health PassiveHealth

	mu        sync.Mutex
	endpoints map[string]*Endpoint
	counters  map[string]*atomic.Uint64 // round-robin positions by backend name
}

// NewRegistry returns an empty registry applying h to every endpoint.
func NewRegistry(h PassiveHealth) *Registry {
	return &Registry{health: h, endpoints: map[string]*Endpoint{}, counters: map[string]*atomic.Uint64{}}
}

// Endpoint returns the state of addr, creating it on first use.
func (r *Registry) Endpoint(addr string) *Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endpointLocked(addr, time.Now().UnixNano())
}

func (r *Registry) endpointLocked(addr string, now int64) *Endpoint {
	e := r.endpoints[addr]
	if e == nil {
		e = &Endpoint{Addr: addr, health: &r.health}
		r.endpoints[addr] = e
	}
	e.lastUsed.Store(now)
	return e
}

// Lookup returns the state of addr, or nil when it has none; unlike
// Endpoint it neither creates state nor counts as a use.
func (r *Registry) Lookup(addr string) *Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endpoints[addr]
}

// Len is the number of endpoints with state.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.endpoints)
}

// Ejected counts the endpoints out of rotation right now.
func (r *Registry) Ejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.endpoints {
		if e.Ejected() {
			n++
		}
	}
	return n
}

// Sweep forgets endpoints that have no request in flight and were not used
// (selected or put in a Pool) for idle, and the round-robin position of
// backends not in keep. Pools built earlier keep working with the Endpoint
// values they hold; only the shared state of long-unused addresses is lost.
func (r *Registry) Sweep(idle time.Duration, keep []string) {
	cut := time.Now().Add(-idle).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for a, e := range r.endpoints {
		if e.inflight.Load() == 0 && e.lastUsed.Load() < cut {
			delete(r.endpoints, a)
		}
	}
	if keep != nil {
		k := make(map[string]bool, len(keep))
		for _, n := range keep {
			k[n] = true
		}
		for n := range r.counters {
			if !k[n] {
				delete(r.counters, n)
			}
		}
	}
}

// Pool builds the immutable endpoint set of backend name. weights may be nil
// (all equal); otherwise it is parallel to addrs and a weight <= 0 counts as 1.
func (r *Registry) Pool(name string, addrs []string, weights []int) *Pool {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &Pool{Name: name, Endpoints: make([]*Endpoint, len(addrs))}
	for i, a := range addrs {
		p.Endpoints[i] = r.endpointLocked(a, now)
	}
	c := r.counters[name]
	if c == nil {
		c = new(atomic.Uint64)
		r.counters[name] = c
	}
	p.next = c
	if weights != nil {
		p.weights = make([]int, len(addrs))
		equal := true
		for i := range addrs {
			w := 1
			if i < len(weights) && weights[i] > 0 {
				w = weights[i]
			}
			p.weights[i] = w
			equal = equal && w == p.weights[0]
		}
		if equal {
			p.weights = nil
		} else {
			p.current = make([]int, len(addrs))
		}
	}
	return p
}

// Pool is one backend's endpoints as of one snapshot. It is immutable but
// for the balancing state its policies keep.
type Pool struct {
	// Name is the backend name the pool was built for.
	Name string
	// Endpoints are the candidates, in snapshot order; Select returns an
	// index into this slice.
	Endpoints []*Endpoint

	next    *atomic.Uint64 // shared round-robin position (survives swaps)
	weights []int          // nil when all weights are equal

	mu      sync.Mutex // guards current
	current []int      // smooth weighted round-robin state

	maglevOnce sync.Once
	maglev     []int32
}

// Policy chooses an endpoint for a request.
type Policy interface {
	// Select returns the index in p.Endpoints of the endpoint for r, or -1
	// when p has no endpoints. Ejected endpoints are skipped; when every
	// endpoint is ejected one is returned anyway ("panic mode", as Envoy
	// does), since a possibly-bad endpoint beats a certain 503.
	Select(p *Pool, r *http.Request) int
}

// Choose is Select with the endpoint; nil when p is empty.
func Choose(pol Policy, p *Pool, r *http.Request) *Endpoint {
	if i := pol.Select(p, r); i >= 0 {
		return p.Endpoints[i]
	}
	return nil
}

// Next selects another endpoint than skip (an index) for a retry, by round
// robin over the available ones; -1 when there is none.
func (p *Pool) Next(skip int) int {
	n := len(p.Endpoints)
	if n < 2 {
		return -1
	}
	start := int(p.next.Add(1) % uint64(n))
	for k := range n {
		i := (start + k) % n
		if i != skip && p.Endpoints[i].available() {
			return i
		}
	}
	return -1
}

// Has reports whether the registry still holds ep as the state of addr.
func (r *Registry) Has(addr string, ep *Endpoint) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endpoints[addr] == ep
}
