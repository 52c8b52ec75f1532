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
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// checkedBackend answers requests with its name and its /healthz with 200
// or 503 at will.
func checkedBackend(t *testing.T, name string, bad *atomic.Bool) string {
	srv := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if bad.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		fmt.Fprint(w, name)
	})
	return addr(srv)
}

// waitFor polls cond for up to 10 s (checks run every 100 ms).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastCheck(path string) *snapshot.HealthCheck {
	return &snapshot.HealthCheck{Path: path, IntervalMs: 100, TimeoutMs: 50, HealthyThreshold: 1, UnhealthyThreshold: 1}
}

// TestActiveHealthCheck: an endpoint failing its check gets no traffic
// until it passes again; with every endpoint failing the proxy fails open
// (forwards anyway, as with passive ejection); the metrics follow.
func TestActiveHealthCheck(t *testing.T) {
	var badA, badB atomic.Bool
	a, b := checkedBackend(t, "a", &badA), checkedBackend(t, "b", &badB)
	reg := prometheus.NewPedanticRegistry()
	p, front := newProxy(t, reg)
	snap := oneRoute("svc", a, b)
	snap.Hosts[0].Routes[0].Backend.HealthCheck = fastCheck("/healthz")
	if _, err := snapshot.Decode(snapshot.Seal(snap)); err != nil {
		t.Fatal(err)
	}
	p.Swap(compile(t, snap))

	spread := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			resp, body := get(t, front.Client(), front.URL+"/", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			got[body]++
		}
		return got
	}
	if got := spread(10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("healthy endpoints: %v, want 5 each", got)
	}
	healthy := func(ep string) float64 {
		v, ok := series(t, reg, MetricEndpointHealthy, `backend="svc"`, `endpoint="`+ep+`"`)
		if !ok {
			t.Fatalf("no %s series for %s", MetricEndpointHealthy, ep)
		}
		return v
	}

	badB.Store(true)
	waitFor(t, "b to fail its check", func() bool { return p.registry.Lookup(b).Unhealthy() })
	if got := spread(10); got["a"] != 10 {
		t.Errorf("b fails its check: %v, want all 10 on a", got)
	}
	if healthy(b) != 0 || healthy(a) != 1 {
		t.Errorf("%s: a=%v b=%v, want 1 and 0", MetricEndpointHealthy, healthy(a), healthy(b))
	}
	// The state survives a swap to an equal snapshot: the checker is kept.
	p.Swap(compile(t, snap))
	if !p.registry.Lookup(b).Unhealthy() {
		t.Error("a swap reset the active health state of b")
	}

	badA.Store(true)
	waitFor(t, "a to fail its check", func() bool { return p.registry.Lookup(a).Unhealthy() })
	if got := spread(10); got["a"]+got["b"] != 10 {
		t.Errorf("every endpoint failing: %v, want 10 answered (fail open)", got)
	}

	badA.Store(false)
	badB.Store(false)
	waitFor(t, "both to pass again", func() bool { return !p.registry.Lookup(a).Unhealthy() && !p.registry.Lookup(b).Unhealthy() })
	if got := spread(10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("recovered: %v, want 5 each", got)
	}
	if v, _ := series(t, reg, MetricEndpointEjections, `backend="svc"`, `endpoint="`+b+`"`, `reason="active"`); v != 1 {
		t.Errorf("%s{b,active} = %v, want 1", MetricEndpointEjections, v)
	}
	// Series follow the snapshot: b's go away with it, and its checker.
	p.Swap(compile(t, oneRoute("svc", a)))
	for _, name := range []string{MetricEndpointHealthy, MetricEndpointEjections} {
		if _, ok := series(t, reg, name, `endpoint="`+b+`"`); ok {
			t.Errorf("%s still has a series for %s, which left the snapshot", name, b)
		}
	}
	if n := p.health.checks.Len(); n != 0 {
		t.Errorf("%d checkers after a snapshot without checks, want 0", n)
	}
}

// series gathers reg and returns the value of the first series of name
// whose labels contain all of want, and whether there is one.
func series(t *testing.T, reg *prometheus.Registry, name string, want ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			s := strings.Join(labels, ",")
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestHealthCheckersFollowSwaps: 100 swaps through snapshots with
// different check configurations run exactly one checker per endpoint and
// configuration of the current snapshot, and leave no goroutine behind.
func TestHealthCheckersFollowSwaps(t *testing.T) {
	var never atomic.Bool
	a, b := checkedBackend(t, "a", &never), checkedBackend(t, "b", &never)
	p, _ := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("svc", a, b)))
	base := runtime.NumGoroutine()
	for i := range 100 {
		s := oneRoute("svc", a, b)
		s.Hosts[0].Routes[0].Backend.HealthCheck = fastCheck(fmt.Sprintf("/healthz?swap=%d", i%7))
		// A second route to the same endpoints with the same check shares
		// its checkers; one with a TCP check adds its own.
		s.Hosts = append(s.Hosts, snapshot.VirtualHost{Host: "x.test", Routes: []snapshot.Route{
			{Path: "/same", PathType: snapshot.PathPrefix, Backend: s.Hosts[0].Routes[0].Backend},
			{Path: "/tcp", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "tcp", Endpoints: []string{a},
				HealthCheck: &snapshot.HealthCheck{IntervalMs: 100, TimeoutMs: 50, HealthyThreshold: 1, UnhealthyThreshold: 1}}},
		}})
		p.Swap(compile(t, s))
		if n := p.health.checks.Len(); n != 3 {
			t.Fatalf("swap %d: %d checkers, want 3 (a and b for the HTTP check, a for the TCP check)", i, n)
		}
	}
	p.Swap(compile(t, oneRoute("svc", a, b)))
	if n := p.health.checks.Len(); n != 0 {
		t.Fatalf("%d checkers after a snapshot without checks, want 0", n)
	}
	// Probe connections close asynchronously inside net/http: poll.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after 100 swaps, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
