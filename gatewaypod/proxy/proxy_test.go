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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// echo is what a test backend answers: who it is and what it received.
type echo struct {
	Backend string
	Host    string
	Path    string
	Header  http.Header
}

// newBackend starts a backend on 127.0.0.1 that answers with an echo.
func newBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend")
		_ = json.NewEncoder(w).Encode(echo{Backend: name, Host: r.Host, Path: r.URL.RequestURI(), Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// addr is the host:port of an httptest server.
func addr(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func compile(t testing.TB, s *snapshot.Snapshot) *router.Router {
	t.Helper()
	rt, err := router.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// oneRoute is a snapshot with Prefix "/" on host "" to backend name.
func oneRoute(name string, endpoints ...string) *snapshot.Snapshot {
	return &snapshot.Snapshot{Version: "v-" + name, Hosts: []snapshot.VirtualHost{{Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: name, Endpoints: endpoints},
	}}}}}
}

func newProxy(t *testing.T, reg prometheus.Registerer) (*Proxy, *httptest.Server) {
	t.Helper()
	p, err := New(Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return p, front
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestProxyStatuses(t *testing.T) {
	b := newBackend(t, "b")
	tests := map[string]struct {
		snap       *snapshot.Snapshot // nil: no Swap at all
		wantCode   int
		wantServer string
	}{
		"no router yet": {wantCode: http.StatusServiceUnavailable, wantServer: ServerHeader},
		"no route": {
			snap:     &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "other.test", Routes: oneRoute("b", addr(b)).Hosts[0].Routes}}},
			wantCode: http.StatusNotFound, wantServer: ServerHeader,
		},
		"no endpoints":    {snap: oneRoute("b"), wantCode: http.StatusServiceUnavailable, wantServer: ServerHeader},
		"dial failure":    {snap: oneRoute("b", closedAddr(t)), wantCode: http.StatusBadGateway, wantServer: ServerHeader},
		"forwarded":       {snap: oneRoute("b", addr(b)), wantCode: http.StatusOK, wantServer: "backend"},
		"default backend": {snap: &snapshot.Snapshot{DefaultBackend: &snapshot.Backend{Name: "d", Endpoints: []string{addr(b)}}}, wantCode: http.StatusOK, wantServer: "backend"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			p, front := newProxy(t, reg)
			if tc.snap != nil {
				p.Swap(compile(t, tc.snap))
			}
			resp, body := get(t, front.Client(), front.URL+"/x", nil)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tc.wantCode, body)
			}
			if got := resp.Header.Get("Server"); got != tc.wantServer {
				t.Errorf("Server = %q, want %q", got, tc.wantServer)
			}
			class := fmt.Sprintf("%dxx", tc.wantCode/100)
			if got := testutil.ToFloat64(p.metrics.requests[tc.wantCode/100-1]); got != 1 {
				t.Errorf("%s{code=%q} = %v, want 1", MetricRequests, class, got)
			}
			if n, err := testutil.GatherAndCount(reg, MetricRequests); err != nil || n != 5 {
				t.Errorf("GatherAndCount(%s) = %d, %v; want all 5 classes", MetricRequests, n, err)
			}
		})
	}
}

func TestProxyHeaders(t *testing.T) {
	b := newBackend(t, "b")
	p, front := newProxy(t, nil)
	p.Swap(compile(t, &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "app.test", Routes: []snapshot.Route{{
		Path: "/api", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "b", Endpoints: []string{addr(b)}},
	}}}}}))
	resp, body := get(t, front.Client(), front.URL+"/api/v1?q=1", map[string]string{
		"Host":              "App.Test:8080",
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Host":  "spoofed.test",
		"X-Forwarded-Proto": "https",
		"Connection":        "X-Secret",
		"X-Secret":          "hop-by-hop",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %q", resp.StatusCode, body)
	}
	var got echo
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"Host":              {got.Host, "App.Test:8080"},
		"path":              {got.Path, "/api/v1?q=1"},
		"X-Forwarded-For":   {strings.Join(got.Header.Values("X-Forwarded-For"), ","), "127.0.0.1"},
		"X-Forwarded-Host":  {got.Header.Get("X-Forwarded-Host"), "App.Test:8080"},
		"X-Forwarded-Proto": {got.Header.Get("X-Forwarded-Proto"), "http"},
		"X-Secret":          {got.Header.Get("X-Secret"), ""},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("backend saw %s = %q, want %q", what, c[0], c[1])
		}
	}
}

func TestProxyRoundRobin(t *testing.T) {
	var backends []*httptest.Server
	var eps []string
	for i := range 3 {
		b := newBackend(t, fmt.Sprint("b", i))
		backends = append(backends, b)
		eps = append(eps, addr(b))
	}
	p, front := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("svc", eps...)))

	seen := map[string]int{}
	var order []string
	call := func() {
		_, body := get(t, front.Client(), front.URL+"/", nil)
		var e echo
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		seen[e.Backend]++
		order = append(order, e.Backend)
	}
	for range 30 {
		call()
	}
	for i := range 3 {
		if n := seen[fmt.Sprint("b", i)]; n != 10 {
			t.Errorf("b%d got %d of 30 requests, want 10 (%v)", i, n, seen)
		}
	}

	// A swap to a new router with the same backend continues the rotation:
	// after one more request (b0) the next is b1, where a reset would give b0.
	call()
	last := order[len(order)-1]
	p.Swap(compile(t, oneRoute("svc", eps...)))
	call()
	if next := order[len(order)-1]; next == last {
		t.Errorf("after swap the same endpoint %s served twice in a row; rotation was reset", next)
	}
}

func TestProxyCountsSwaps(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p, _ := newProxy(t, reg)
	if old := p.Swap(compile(t, oneRoute("a"))); old != nil {
		t.Errorf("first Swap returned %v, want nil", old)
	}
	first := p.Router()
	if old := p.Swap(compile(t, oneRoute("b"))); old != first {
		t.Errorf("Swap returned %p, want the previous router %p", old, first)
	}
	if got := testutil.ToFloat64(p.metrics.swaps); got != 2 {
		t.Errorf("%s = %v, want 2", MetricSnapshotSwaps, got)
	}
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Error("New on a registry that already has the metrics: want error")
	}
}

// TestSwapUnderLoad swaps the router 50 times while 8 clients send 2000
// requests, alternating between configurations that route to different
// backends; no request may fail. Run with -race.
func TestSwapUnderLoad(t *testing.T) {
	const (
		total   = 2000
		swaps   = 50
		workers = 8
	)
	a1, a2, b1 := newBackend(t, "a1"), newBackend(t, "a2"), newBackend(t, "b1")
	routers := []*router.Router{
		compile(t, oneRoute("a", addr(a1), addr(a2))),
		compile(t, &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{
			{Host: "*.test", Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "b", Endpoints: []string{addr(b1)}}}}},
			{Host: "", Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "a", Endpoints: []string{addr(a2)}}}}},
		}}),
	}
	p, front := newProxy(t, prometheus.NewRegistry())
	p.Swap(routers[0])

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a cap for a loaded box; ~0.5 s normally
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	var (
		next, swapped atomic.Int64
		wg            sync.WaitGroup
		mu            sync.Mutex
		failures      []string
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > total || ctx.Err() != nil {
					return
				}
				if n%(total/swaps) == 0 {
					p.Swap(routers[swapped.Add(1)%2])
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/", nil)
				req.Host = "x.test"
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("request %d: status %d, body error %v", n, resp.StatusCode, err))
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("did not finish %d requests within the time cap", total)
	}
	if len(failures) > 0 {
		t.Fatalf("requests failed across swaps: %v", failures)
	}
	if got := swapped.Load(); got != swaps {
		t.Errorf("swapped %d times, want %d", got, swaps)
	}
	if got := testutil.ToFloat64(p.metrics.requests[1]); got != total {
		t.Errorf("2xx requests = %v, want %d", got, total)
	}
}
