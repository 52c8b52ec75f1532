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
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// fakeClock is an injectable clock for the limiters.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// limitProxy returns a proxy with a fake limiter clock serving one route
// "ns/app" Prefix "/" to backend with limits l.
func limitProxy(t *testing.T, opts Options, backend string, l snapshot.Limits) (*Proxy, *fakeClock) {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	p.limits.now = clk.Now
	p.Swap(compile(t, limitSnapshot("v1", backend, l)))
	return p, clk
}

func limitSnapshot(version, backend string, l snapshot.Limits) *snapshot.Snapshot {
	s := oneRoute("ns/app:80", backend)
	s.Version = version
	s.Hosts[0].Routes[0].Source = "ns/app"
	s.Hosts[0].Routes[0].Limits = &l
	return s
}

// serveAs sends one request to p from the TCP peer remote, with an
// X-Forwarded-For header when xff is not empty.
func serveAs(p *Proxy, remote, xff, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://app.test"+path, nil)
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req)
	return w
}

func limitedCounts(p *Proxy) [3]float64 {
	var out [3]float64
	for i := range p.metrics.limited {
		out[i] = testutil.ToFloat64(p.metrics.limited[i])
	}
	return out
}

func TestRateLimits(t *testing.T) {
	b := newBackend(t, "b")
	type step struct {
		advance    time.Duration
		n          int    // requests sent
		code       int    // status of each of them
		retryAfter string // Retry-After when code is 429
	}
	tests := map[string]struct {
		limits snapshot.Limits
		steps  []step
		want   [3]float64 // limited requests by kind: rps, rpm, connections
	}{
		"rps default multiplier: burst 10 then 429": {
			limits: snapshot.Limits{RPS: 2},
			steps: []step{
				{n: 10, code: 200},
				{n: 1, code: 429, retryAfter: "1"},
				{advance: 500 * time.Millisecond, n: 1, code: 200},
				{n: 1, code: 429, retryAfter: "1"},
			},
			want: [3]float64{2, 0, 0},
		},
		"rps multiplier 1": {
			limits: snapshot.Limits{RPS: 1, BurstMultiplier: 1},
			steps: []step{
				{n: 1, code: 200},
				{n: 3, code: 429, retryAfter: "1"},
				{advance: time.Second, n: 1, code: 200},
			},
			want: [3]float64{3, 0, 0},
		},
		"rpm: one token per 10s": {
			limits: snapshot.Limits{RPM: 6, BurstMultiplier: 1},
			steps: []step{
				{n: 6, code: 200},
				{n: 1, code: 429, retryAfter: "10"},
				{advance: 4 * time.Second, n: 1, code: 429, retryAfter: "6"},
				{advance: 6 * time.Second, n: 1, code: 200},
				{n: 1, code: 429, retryAfter: "10"},
			},
			want: [3]float64{0, 3, 0},
		},
		"rps and rpm both apply": {
			limits: snapshot.Limits{RPS: 1, RPM: 4, BurstMultiplier: 3}, // bursts 3 and 12
			steps: []step{
				{n: 3, code: 200},
				{n: 1, code: 429, retryAfter: "1"}, // rps empty; takes no rpm token
				{advance: time.Second, n: 1, code: 200},
				{advance: time.Second, n: 1, code: 200},
				{advance: 3 * time.Second, n: 3, code: 200},
				{advance: 3 * time.Second, n: 3, code: 200},
				{advance: 3500 * time.Millisecond, n: 1, code: 200}, // 12 rpm tokens used, 11.5/15 refilled
				{n: 1, code: 429, retryAfter: "4"},                  // rps has tokens; rpm needs 3.5 s, rounded up
				{advance: 3600 * time.Millisecond, n: 1, code: 200},
			},
			want: [3]float64{1, 1, 0},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, clk := limitProxy(t, Options{}, addr(b), tc.limits)
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				for j := 0; j < s.n; j++ {
					w := serveAs(p, "192.0.2.1:4000", "", "/")
					if w.Code != s.code {
						t.Fatalf("step %d request %d: status %d, want %d", i, j, w.Code, s.code)
					}
					if w.Code == http.StatusTooManyRequests {
						if got := w.Header().Get("Retry-After"); got != s.retryAfter {
							t.Errorf("step %d: Retry-After %q, want %q", i, got, s.retryAfter)
						}
						if w.Header().Get("Server") != ServerHeader {
							t.Errorf("step %d: 429 not from the proxy", i)
						}
					}
				}
			}
			if got := limitedCounts(p); got != tc.want {
				t.Errorf("limited by kind = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRateLimitClientAddress: buckets are per client address after
// trusted-proxy processing.
func TestRateLimitClientAddress(t *testing.T) {
	b := newBackend(t, "b")
	type req struct {
		remote, xff string
		code        int
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := map[string]struct {
		trusted []netip.Prefix
		reqs    []req
	}{
		"per client address": {reqs: []req{
			{"192.0.2.1:1000", "", 200},
			{"192.0.2.1:1001", "", 429}, // another connection, same address
			{"192.0.2.2:1000", "", 200},
			{"[::ffff:192.0.2.2]:1000", "", 429}, // IPv4-mapped is the same client
			{"[2001:db8::1]:1000", "", 200},
			{"[2001:db8::1]:1000", "", 429},
		}},
		"spoofed X-Forwarded-For from an untrusted peer shares the peer's bucket": {reqs: []req{
			{"192.0.2.1:1000", "203.0.113.1", 200},
			{"192.0.2.1:1000", "203.0.113.2", 429},
			{"192.0.2.1:1000", "203.0.113.3, 203.0.113.4", 429},
		}},
		"spoofed X-Forwarded-For from an untrusted peer with trusted proxies configured": {trusted: trusted, reqs: []req{
			{"192.0.2.1:1000", "203.0.113.1", 200},
			{"192.0.2.1:1000", "203.0.113.2", 429},
		}},
		"trusted proxy: the client in X-Forwarded-For": {trusted: trusted, reqs: []req{
			{"10.0.0.1:1000", "203.0.113.1", 200},
			{"10.0.0.1:1000", "203.0.113.2", 200},
			{"10.0.0.2:1000", "203.0.113.1", 429}, // same client via another proxy
			{"10.0.0.1:1000", "203.0.113.9, 203.0.113.2", 429},
			{"10.0.0.1:1000", "", 200}, // the proxy itself
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, _ := limitProxy(t, Options{TrustedProxies: tc.trusted}, addr(b), snapshot.Limits{RPS: 1, BurstMultiplier: 1})
			for i, r := range tc.reqs {
				if w := serveAs(p, r.remote, r.xff, "/"); w.Code != r.code {
					t.Errorf("request %d from %s (XFF %q): status %d, want %d", i, r.remote, r.xff, w.Code, r.code)
				}
			}
		})
	}
}

// TestConnectionLimit: a client may have Connections requests in flight on
// the route; more get 503 until one finishes.
func TestConnectionLimit(t *testing.T) {
	arrived := make(chan struct{}, 8)
	unblock := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release)
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			arrived <- struct{}{}
			select {
			case <-unblock:
			case <-time.After(10 * time.Second):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	p, _ := limitProxy(t, Options{}, addr(b), snapshot.Limits{Connections: 2})
	const a, other = "192.0.2.1:1000", "192.0.2.2:1000"
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = serveAs(p, a, "", "/block").Code })
	}
	for range codes {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			release()
			t.Fatal("blocked requests did not reach the backend")
		}
	}
	if w := serveAs(p, a, "", "/fast"); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "" {
		t.Errorf("third request in flight: status %d Retry-After %q, want 503 without", w.Code, w.Header().Get("Retry-After"))
	}
	if w := serveAs(p, other, "", "/fast"); w.Code != http.StatusOK {
		t.Errorf("other client: status %d, want 200", w.Code)
	}
	release()
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("blocked request %d: status %d", i, c)
		}
	}
	for i := 0; i < 3; i++ { // the slots were given back
		if w := serveAs(p, a, "", "/fast"); w.Code != http.StatusOK {
			t.Errorf("after release %d: status %d, want 200", i, w.Code)
		}
	}
	if got := limitedCounts(p); got != [3]float64{0, 0, 1} {
		t.Errorf("limited by kind = %v", got)
	}
}

// TestLimitsSurviveSwap: buckets belong to the route's identity, not to the
// router; changed limit values start fresh buckets.
func TestLimitsSurviveSwap(t *testing.T) {
	b, b2 := newBackend(t, "b"), newBackend(t, "b2")
	l := snapshot.Limits{RPS: 1, BurstMultiplier: 1}
	p, _ := limitProxy(t, Options{}, addr(b), l)
	const a = "192.0.2.1:1000"
	if w := serveAs(p, a, "", "/"); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	// New snapshot, other endpoints, same route.
	p.Swap(compile(t, limitSnapshot("v2", addr(b2), l)))
	if w := serveAs(p, a, "", "/"); w.Code != http.StatusTooManyRequests {
		t.Errorf("after swap: status %d, want 429 (bucket kept)", w.Code)
	}
	l.RPS = 2
	p.Swap(compile(t, limitSnapshot("v3", addr(b2), l)))
	if w := serveAs(p, a, "", "/"); w.Code != http.StatusOK {
		t.Errorf("after limit change: status %d, want 200 (fresh bucket)", w.Code)
	}
}

// TestNoLimitsNoState: routes without rate or connection limits create no
// limiter state.
func TestNoLimitsNoState(t *testing.T) {
	b := newBackend(t, "b")
	p, _ := limitProxy(t, Options{}, addr(b), snapshot.Limits{MaxBodyBytes: ptr[int64](1 << 20)})
	for i := 0; i < 20; i++ {
		if w := serveAs(p, "192.0.2.1:1000", "", "/"); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := len(p.limits.routes); n != 0 {
		t.Errorf("%d limit routes, want 0", n)
	}
}

// TestLimitEviction: client entries are capped per route and swept when
// idle; a swept route is rebuilt on its next request.
func TestLimitEviction(t *testing.T) {
	b := newBackend(t, "b")
	p, clk := limitProxy(t, Options{}, addr(b), snapshot.Limits{RPS: 1, BurstMultiplier: 1})
	p.limits.maxClients = 4
	for i := 0; i < 50; i++ {
		if w := serveAs(p, fmt.Sprintf("198.51.100.%d:1000", i), "", "/"); w.Code != http.StatusOK {
			t.Fatalf("client %d: status %d", i, w.Code)
		}
		if n := p.limits.clients(); n > 4 {
			t.Fatalf("after client %d: %d entries, cap 4", i, n)
		}
	}
	// The newest client is still limited.
	if w := serveAs(p, "198.51.100.49:1000", "", "/"); w.Code != http.StatusTooManyRequests {
		t.Errorf("newest client: status %d, want 429", w.Code)
	}
	clk.Advance(limitMinIdle - time.Second)
	p.limits.sweep()
	if n := p.limits.clients(); n == 0 {
		t.Error("entries swept before their idle time")
	}
	clk.Advance(2 * time.Second)
	p.limits.sweep()
	if n, r := p.limits.clients(), len(p.limits.routes); n != 0 || r != 0 {
		t.Errorf("after idle sweep: %d entries, %d routes, want 0", n, r)
	}
	// The router's cached limiter was swept: the next request rebuilds it.
	for i, want := range []int{200, 429} {
		if w := serveAs(p, "198.51.100.49:1000", "", "/"); w.Code != want {
			t.Errorf("after sweep, request %d: status %d, want %d", i, w.Code, want)
		}
	}
	if r := len(p.limits.routes); r != 1 {
		t.Errorf("%d routes, want 1", r)
	}
}

// TestLimitCapInFlight: at the cap, entries with requests in flight are not
// evicted; the new client is refused instead.
func TestLimitCapInFlight(t *testing.T) {
	ls := newLimiters()
	ls.maxClients = 2
	lr := ls.route(limitKey{source: "ns/app", path: "/", conns: 1, mult: 5})
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	for _, x := range []netip.Addr{a, b} {
		if ad := lr.admit(x); !ad.ok {
			t.Fatalf("%s refused", x)
		}
	}
	if ad := lr.admit(c); ad.ok || ad.kind != kindConnections {
		t.Errorf("new client at the cap with all in flight: %+v, want refused", ad)
	}
	lr.release(a)
	if ad := lr.admit(c); !ad.ok {
		t.Errorf("new client after a release: refused %+v", ad)
	}
	if len(lr.clients) != 2 || lr.clients[a] != nil {
		t.Errorf("clients = %v, want b and c", lr.clients)
	}
}

// TestLimitedMetricRegistered: the metric is exported with every kind.
func TestLimitedMetricRegistered(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := New(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, MetricLimitedRequests); err != nil || n != 3 {
		t.Errorf("%s series = %d, %v; want 3", MetricLimitedRequests, n, err)
	}
}
