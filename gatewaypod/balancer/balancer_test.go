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

package balancer

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func addrs(n int) []string {
	var a []string
	for i := range n {
		a = append(a, fmt.Sprintf("10.0.0.%d:80", i+1))
	}
	return a
}

func picks(t *testing.T, pol Policy, p *Pool, n int) string {
	t.Helper()
	var out []string
	for range n {
		i := pol.Select(p, nil)
		if i < 0 {
			out = append(out, "-")
			continue
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(p.Endpoints[i].Addr, "10.0.0."), ":80"))
	}
	return strings.Join(out, ",")
}

func TestRoundRobin(t *testing.T) {
	tests := map[string]struct {
		weights []int
		n       int
		want    string
	}{
		"equal":            {n: 3, want: "1,2,3,1,2,3,1"},
		"equal weights":    {weights: []int{2, 2, 2}, n: 3, want: "1,2,3,1,2,3,1"},
		"smooth weighted":  {weights: []int{5, 1, 1}, n: 3, want: "1,1,2,1,3,1,1"},
		"zero weight is 1": {weights: []int{0, 1}, n: 2, want: "1,2,1,2,1,2,1"},
		"single":           {n: 1, want: "1,1,1,1,1,1,1"},
		"empty":            {n: 0, want: "-,-,-,-,-,-,-"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := NewRegistry(PassiveHealth{})
			p := r.Pool("b", addrs(tc.n), tc.weights)
			if got := picks(t, RoundRobin{}, p, 7); got != tc.want {
				t.Errorf("picks = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRoundRobinSurvivesSwap: a new Pool for the same backend (as after a
// snapshot swap) continues the rotation and keeps endpoint state.
func TestRoundRobinSurvivesSwap(t *testing.T) {
	r := NewRegistry(PassiveHealth{MaxFailures: 1, BaseEjection: time.Hour})
	p1 := r.Pool("b", addrs(3), nil)
	if got := picks(t, RoundRobin{}, p1, 2); got != "1,2" {
		t.Fatalf("picks = %s", got)
	}
	p1.Endpoints[2].ReportFailure(time.Now())
	p2 := r.Pool("b", addrs(3), nil)
	if p2.Endpoints[2] != p1.Endpoints[2] {
		t.Fatal("new pool has new endpoint state")
	}
	if got := picks(t, RoundRobin{}, p2, 4); got != "1,2,1,2" {
		t.Errorf("after swap picks = %s, want 1,2,1,2 (3 stays ejected, rotation continues)", got)
	}
}

func TestPassiveHealth(t *testing.T) {
	r := NewRegistry(PassiveHealth{MaxFailures: 3, BaseEjection: time.Second, MaxEjection: 3 * time.Second})
	e := r.Endpoint("10.0.0.1:80")
	now := time.Unix(1000, 0)
	if e.ReportFailure(now) || e.ReportFailure(now) {
		t.Fatal("ejected before 3 failures")
	}
	if !e.Available(now) {
		t.Fatal("not available after 2 failures")
	}
	e.ReportSuccess() // streak broken
	e.ReportFailure(now)
	e.ReportFailure(now)
	if !e.ReportFailure(now) {
		t.Fatal("3rd consecutive failure did not eject")
	}
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, false}, {999 * time.Millisecond, false}, {time.Second, true}} {
		if got := e.Available(now.Add(c.at)); got != c.want {
			t.Errorf("Available(+%v) = %v, want %v", c.at, got, c.want)
		}
	}
	// Failing again right after the backoff doubles it: 2 s, then capped at 3 s.
	for i, want := range []time.Duration{2 * time.Second, 3 * time.Second} {
		now = now.Add(10 * time.Second)
		for range 3 {
			e.ReportFailure(now)
		}
		if e.Available(now.Add(want-time.Millisecond)) || !e.Available(now.Add(want)) {
			t.Errorf("ejection %d: want %v", i+2, want)
		}
	}
	e.ReportSuccess()
	if !e.Available(now) {
		t.Error("success did not bring the endpoint back")
	}
	if (&Endpoint{}).ReportFailure(now) {
		t.Error("endpoint without health config ejected")
	}
}

func TestPanicModeAndNext(t *testing.T) {
	r := NewRegistry(PassiveHealth{MaxFailures: 1, BaseEjection: time.Hour})
	p := r.Pool("b", addrs(3), nil)
	for _, e := range p.Endpoints {
		e.ReportFailure(time.Now())
	}
	for _, pol := range []Policy{RoundRobin{}, LeastRequest{}, ConsistentHash{}} {
		req, _ := http.NewRequest("GET", "/k", nil)
		if i := pol.Select(p, req); i < 0 {
			t.Errorf("%T: all ejected gave -1, want panic-mode pick", pol)
		}
	}
	if i := p.Next(0); i != -1 {
		t.Errorf("Next with all ejected = %d, want -1", i)
	}
	p.Endpoints[1].ReportSuccess()
	if i := p.Next(0); i != 1 {
		t.Errorf("Next(0) = %d, want 1", i)
	}
	if i := p.Next(1); i != -1 {
		t.Errorf("Next(1) = %d, want -1 (only 1 is available)", i)
	}
}

func TestLeastRequest(t *testing.T) {
	r := NewRegistry(PassiveHealth{})
	p := r.Pool("b", addrs(4), nil)
	// Endpoint 0 is busy; it must get (almost) nothing while the others are idle.
	for range 100 {
		p.Endpoints[0].Acquire()
	}
	counts := make([]int, 4)
	for range 4000 {
		i := LeastRequest{}.Select(p, nil)
		counts[i]++
	}
	if counts[0] != 0 {
		t.Errorf("busy endpoint got %d picks: %v", counts[0], counts)
	}
	for i := 1; i < 4; i++ {
		if counts[i] < 900 {
			t.Errorf("endpoint %d got %d of 4000: %v", i, counts[i], counts)
		}
	}
	// Concurrent Acquire/Release leave the counters balanced.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				e := Choose(LeastRequest{}, p, nil)
				e.Acquire()
				e.Release()
			}
		})
	}
	wg.Wait()
	if got := p.Endpoints[1].InFlight(); got != 0 {
		t.Errorf("in flight after balanced acquire/release = %d", got)
	}
}

func keyReq(k string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.Header.Set("X-User", k)
	return r
}

func TestConsistentHash(t *testing.T) {
	pol := ConsistentHash{Key: HeaderKey("X-User")}
	const keys = 20000
	assign := func(p *Pool) map[int]string {
		m := make(map[int]string, keys)
		for k := range keys {
			m[k] = p.Endpoints[pol.Select(p, keyReq(fmt.Sprint("user-", k)))].Addr
		}
		return m
	}
	all := addrs(10)
	before := assign(NewRegistry(PassiveHealth{}).Pool("b", all, nil))

	// Spread: each of 10 endpoints gets 10 % ± 2 %.
	share := map[string]int{}
	for _, a := range before {
		share[a]++
	}
	for a, n := range share {
		if n < keys*8/100 || n > keys*12/100 {
			t.Errorf("%s has %d of %d keys", a, n, keys)
		}
	}
	// Same result in another process / another pool (table from addresses only).
	again := assign(NewRegistry(PassiveHealth{}).Pool("other", all, nil))
	for k := range keys {
		if again[k] != before[k] {
			t.Fatalf("key %d: %s then %s for the same endpoints", k, before[k], again[k])
		}
	}
	// Remove one endpoint: its keys move, and few others do (minimal remapping).
	removed := all[3]
	after := assign(NewRegistry(PassiveHealth{}).Pool("b", append(append([]string{}, all[:3]...), all[4:]...), nil))
	moved := 0
	for k := range keys {
		if before[k] != removed && after[k] != before[k] {
			moved++
		}
		if after[k] == removed {
			t.Fatal("key still on the removed endpoint")
		}
	}
	if moved > keys*3/100 {
		t.Errorf("%d of %d keys of surviving endpoints moved (want < 3 %%)", moved, keys)
	}
	// Add one endpoint: about 1/11 of the keys move to it, few elsewhere.
	added := assign(NewRegistry(PassiveHealth{}).Pool("b", append(append([]string{}, all...), "10.0.1.1:80"), nil))
	toNew, elsewhere := 0, 0
	for k := range keys {
		switch {
		case added[k] == "10.0.1.1:80":
			toNew++
		case added[k] != before[k]:
			elsewhere++
		}
	}
	if toNew < keys*7/100 || toNew > keys*11/100 || elsewhere > keys*3/100 {
		t.Errorf("adding an endpoint: %d keys moved to it, %d elsewhere (of %d)", toNew, elsewhere, keys)
	}
	// An ejected endpoint's keys go elsewhere; others stay.
	reg := NewRegistry(PassiveHealth{MaxFailures: 1, BaseEjection: time.Hour})
	p := reg.Pool("b", all, nil)
	p.Endpoints[5].ReportFailure(time.Now())
	ej := assign(p)
	for k := range keys {
		if ej[k] == all[5] || (before[k] != all[5] && ej[k] != before[k]) {
			t.Fatalf("key %d: %s -> %s with %s ejected", k, before[k], ej[k], all[5])
		}
	}
	// No key: round robin.
	noKey, _ := http.NewRequest("GET", "/", nil)
	if i, j := pol.Select(p, noKey), pol.Select(p, noKey); i == j {
		t.Errorf("requests without a key went to %d twice; want rotation", i)
	}
}

func TestKeyFuncs(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://x/a?b=1", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.AddCookie(&http.Cookie{Name: "s", Value: "abc"})
	for name, c := range map[string]struct {
		f    KeyFunc
		want string
		ok   bool
	}{
		"source ip":      {SourceIPKey, "192.0.2.7", true},
		"uri":            {URIKey, "/a?b=1", true},
		"cookie":         {CookieKey("s"), "abc", true},
		"missing cookie": {CookieKey("t"), "", false},
		"missing header": {HeaderKey("X-None"), "", false},
	} {
		if got, ok := c.f(r); got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", name, got, ok, c.want, c.ok)
		}
	}
}

func TestSweep(t *testing.T) {
	r := NewRegistry(PassiveHealth{})
	p := r.Pool("a", addrs(2), nil)
	p.Endpoints[0].Acquire()
	r.Pool("gone", []string{"10.9.9.9:1"}, nil)
	r.Sweep(-time.Second, []string{"a"}) // everything is "old"; in-flight stays
	if got := r.Len(); got != 1 {
		t.Errorf("after sweep %d endpoints, want 1 (the one in flight)", got)
	}
	if _, ok := r.counters["gone"]; ok {
		t.Error("sweep kept the counter of a removed backend")
	}
}

func BenchmarkSelect(b *testing.B) {
	r := NewRegistry(DefaultPassiveHealth)
	p := r.Pool("b", addrs(16), nil)
	req := keyReq("user-42")
	for name, pol := range map[string]Policy{"roundrobin": RoundRobin{}, "leastrequest": LeastRequest{}, "hash": ConsistentHash{Key: HeaderKey("X-User")}} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pol.Select(p, req)
				}
			})
		})
	}
}
