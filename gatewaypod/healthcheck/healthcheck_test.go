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

package healthcheck

import (
	"context"
	"github.com/portico-dev/portico/gatewaypod/balancer"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// flappy is a backend whose /healthz answers 200 or 500 at will and counts
// the failing answers it gave.
type flappy struct {
	srv    *httptest.Server
	bad    atomic.Bool
	failed atomic.Int64
}

func newFlappy(t *testing.T) *flappy {
	f := &flappy{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("User-Agent") != "portico-health-check" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if f.bad.Load() {
			f.failed.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flappy) addr() string { return f.srv.Listener.Addr().String() }

func waitEvent(t *testing.T, ch <-chan HealthEvent) HealthEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no health state change within 10 s")
	}
	return HealthEvent{}
}

func TestCheckerFlipsWithThresholds(t *testing.T) {
	f := newFlappy(t)
	reg := balancer.NewRegistry(balancer.PassiveHealth{})
	events := make(chan HealthEvent, 8)
	cs := NewCheckers(reg, func(ev HealthEvent) { events <- ev })
	defer cs.Close()
	key := CheckKey{Addr: f.addr(), Check: Check{Path: "/healthz", Interval: 5 * time.Millisecond, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 3}}
	cs.Sync([]CheckKey{key})
	ep := reg.Endpoint(f.addr())
	if !ep.Available(time.Now()) {
		t.Fatal("a checked endpoint starts out of rotation; want in rotation until its checks fail")
	}

	f.bad.Store(true)
	ev := waitEvent(t, events)
	if ev.Healthy || ev.Key != key || ev.Err == nil {
		t.Fatalf("event = %+v, want unhealthy for %v with the probe error", ev, key)
	}
	if n := f.failed.Load(); n < 3 {
		t.Errorf("unhealthy after %d failed probes, want at least the threshold 3", n)
	}
	if ep.Available(time.Now()) || !ep.Unhealthy() {
		t.Error("endpoint failing its check is still in rotation")
	}
	if h, ok := cs.Healthy(key); h || !ok {
		t.Errorf("Healthy(key) = %v, %v; want false, true", h, ok)
	}
	if _, active := ep.Ejections(); active != 1 {
		t.Errorf("active ejections = %d, want 1", active)
	}
	// A round-robin pool skips it.
	other := reg.Endpoint("10.0.0.9:80")
	p := reg.Pool("b", []string{f.addr(), other.Addr}, nil)
	for range 4 {
		if i := (balancer.RoundRobin{}).Select(p, nil); p.Endpoints[i] != other {
			t.Fatalf("round robin chose the unhealthy endpoint")
		}
	}

	f.bad.Store(false)
	if ev := waitEvent(t, events); !ev.Healthy {
		t.Fatalf("event = %+v, want healthy", ev)
	}
	if !ep.Available(time.Now()) {
		t.Error("endpoint passing its check again is still out of rotation")
	}

	// Stopping a checker that holds its endpoint out puts it back.
	f.bad.Store(true)
	if ev := waitEvent(t, events); ev.Healthy {
		t.Fatalf("event = %+v, want unhealthy", ev)
	}
	cs.Sync(nil)
	if cs.Len() != 0 || !ep.Available(time.Now()) {
		t.Errorf("after Sync(nil): %d checkers, endpoint available %v; want 0, true", cs.Len(), ep.Available(time.Now()))
	}
}

func TestCheckerTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	live := newFlappy(t)
	_, livePort, _ := net.SplitHostPort(live.addr())
	port, _ := strconv.Atoi(livePort)

	reg := balancer.NewRegistry(balancer.PassiveHealth{})
	events := make(chan HealthEvent, 8)
	cs := NewCheckers(reg, func(ev HealthEvent) { events <- ev })
	defer cs.Close()
	c := Check{Interval: 5 * time.Millisecond, Timeout: time.Second, Healthy: 1, Unhealthy: 2}
	// The dead address is probed on the live port: healthy. The same
	// address on its own port is a second checker, and fails.
	onLive := c
	onLive.Port = port
	cs.Sync([]CheckKey{{Addr: dead, Check: c}, {Addr: dead, Check: onLive}})
	if cs.Len() != 2 {
		t.Fatalf("%d checkers, want 2 (one per endpoint and check)", cs.Len())
	}
	ev := waitEvent(t, events)
	if ev.Healthy || ev.Key.Check != c {
		t.Fatalf("event = %+v, want the TCP check of the closed port unhealthy", ev)
	}
	if h, _ := cs.Healthy(CheckKey{Addr: dead, Check: onLive}); !h {
		t.Error("TCP check on the overriding live port is unhealthy")
	}
}

func TestProbeStatuses(t *testing.T) {
	for code, healthy := range map[int]bool{200: true, 204: true, 302: true, 399: true, 404: false, 500: false, 503: false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(code)
		}))
		cs := NewCheckers(balancer.NewRegistry(balancer.PassiveHealth{}), nil)
		err := cs.probe(context.Background(), CheckKey{Addr: srv.Listener.Addr().String(), Check: Check{Path: "/", Timeout: time.Second}}, nil)
		srv.Close()
		if (err == nil) != healthy {
			t.Errorf("answer %d: probe error %v, want healthy %v", code, err, healthy)
		}
	}
}
