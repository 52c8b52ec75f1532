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
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func ptr[T any](v T) *T { return &v }

// policySnapshot has one host per policy under test.
func policySnapshot(primary, canary, slow string) *snapshot.Snapshot {
	be := func(name, addr string) snapshot.Backend {
		return snapshot.Backend{Name: "ns/" + name + ":80", Endpoints: []string{addr}}
	}
	route := func(path string, r snapshot.Route) snapshot.Route {
		r.Path, r.PathType = path, snapshot.PathPrefix
		if r.Backend.Name == "" {
			r.Backend = be("primary", primary)
		}
		return r
	}
	regex := func(path string, r snapshot.Route) snapshot.Route {
		r = route(path, r)
		r.PathType = snapshot.PathRegex
		return r
	}
	return &snapshot.Snapshot{Version: "v-policies", Hosts: []snapshot.VirtualHost{
		{Host: "app.test", Routes: []snapshot.Route{
			regex("/rw(/|$)(.*)", snapshot.Route{Source: "ns/rw", Rewrite: &snapshot.Rewrite{Target: "/new/$2?added=1", ForwardedPrefix: "/rw"}}),
			route("/redirect", snapshot.Route{Redirect: &snapshot.Redirect{URL: "https://elsewhere.test/x", Code: 301}}),
			route("/ssl", snapshot.Route{Redirect: &snapshot.Redirect{SSL: true}}),
			route("/canary", snapshot.Route{Source: "ns/canary", Canaries: []snapshot.Canary{{Backend: be("canary", canary), Header: "X-Canary"}}}),
			route("/denied", snapshot.Route{Access: &snapshot.Access{Deny: []string{"127.0.0.0/8"}}}),
			route("/allowed", snapshot.Route{Access: &snapshot.Access{Allow: []string{"127.0.0.1/32"}}}),
			route("/cors", snapshot.Route{CORS: &snapshot.CORS{AllowOrigins: []string{"https://*.example.com"},
				AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"X-Token"}, ExposeHeaders: []string{"X-Total"},
				AllowCredentials: true, MaxAgeSeconds: 600}}),
			route("/small", snapshot.Route{Limits: &snapshot.Limits{MaxBodyBytes: ptr[int64](4)}}),
			route("/vhost", snapshot.Route{Upstream: &snapshot.Upstream{Host: "internal.svc"}}),
			route("/slow", snapshot.Route{Backend: be("slow", slow), Upstream: &snapshot.Upstream{ReadTimeoutMs: 50}}),
			route("/", snapshot.Route{}),
		}},
		{Host: "root.test", Routes: []snapshot.Route{route("/", snapshot.Route{Redirect: &snapshot.Redirect{AppRoot: "/app"}})}},
		{Host: "www.app.test", RedirectHost: "app.test"},
	}}
}

func TestServeDecision(t *testing.T) {
	primary, canary := newBackend(t, "primary"), newBackend(t, "canary")
	slow := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	reg := prometheus.NewRegistry()
	p, front := newProxy(t, reg)
	p.Swap(compile(t, policySnapshot(addr(primary), addr(canary), addr(slow))))
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name    string
		method  string
		host    string
		path    string
		hdr     map[string]string
		body    string
		code    int
		backend string            // expected echo backend; "" when not proxied
		path2   string            // expected upstream path and query
		host2   string            // expected upstream Host
		want    map[string]string // response headers
		fwd     map[string]string // upstream request headers
	}{
		{name: "plain", host: "app.test", path: "/x?q=1", code: 200, backend: "primary", path2: "/x?q=1", host2: "app.test"},
		{name: "rewrite with captures and prefix", host: "app.test", path: "/rw/a/b?q=1", code: 200, backend: "primary",
			path2: "/new/a/b?added=1&q=1", fwd: map[string]string{"X-Forwarded-Prefix": "/rw"}},
		{name: "client prefix kept without rewrite", host: "app.test", path: "/x", hdr: map[string]string{"X-Forwarded-Prefix": "/c"},
			code: 200, backend: "primary", fwd: map[string]string{"X-Forwarded-Prefix": "/c"}},
		{name: "redirect url", host: "app.test", path: "/redirect", code: 301, want: map[string]string{"Location": "https://elsewhere.test/x"}},
		{name: "ssl redirect", host: "app.test", path: "/ssl/a?b=c", code: 308, want: map[string]string{"Location": "https://app.test/ssl/a?b=c"}},
		{name: "acme not redirected", host: "app.test", path: "/ssl/../.well-known/acme-challenge/t", code: 200, backend: "primary"},
		{name: "app root", host: "root.test", path: "/", code: 302, want: map[string]string{"Location": "http://root.test/app"}},
		{name: "from-to-www", host: "www.app.test", path: "/p?q", code: 308, want: map[string]string{"Location": "http://app.test/p?q"}},
		{name: "canary by header", host: "app.test", path: "/canary", hdr: map[string]string{"X-Canary": "always"}, code: 200, backend: "canary"},
		{name: "canary never", host: "app.test", path: "/canary", hdr: map[string]string{"X-Canary": "never"}, code: 200, backend: "primary"},
		{name: "canary default primary", host: "app.test", path: "/canary", code: 200, backend: "primary"},
		{name: "denied", host: "app.test", path: "/denied", code: 403},
		{name: "allowed", host: "app.test", path: "/allowed", code: 200, backend: "primary"},
		{name: "cors preflight", method: http.MethodOptions, host: "app.test", path: "/cors",
			hdr:  map[string]string{"Origin": "https://a.example.com", "Access-Control-Request-Method": "PUT"},
			code: 204, want: map[string]string{"Access-Control-Allow-Origin": "https://a.example.com",
				"Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers": "X-Token",
				"Access-Control-Allow-Credentials": "true", "Access-Control-Max-Age": "600"}},
		{name: "cors normal", host: "app.test", path: "/cors", hdr: map[string]string{"Origin": "https://a.example.com"},
			code: 200, backend: "primary", want: map[string]string{"Access-Control-Allow-Origin": "https://a.example.com",
				"Access-Control-Expose-Headers": "X-Total", "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}},
		{name: "cors other origin", host: "app.test", path: "/cors", hdr: map[string]string{"Origin": "https://evil.test"},
			code: 200, backend: "primary", want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "cors options without origin proxied", method: http.MethodOptions, host: "app.test", path: "/cors", code: 200, backend: "primary"},
		{name: "route body limit", method: http.MethodPost, host: "app.test", path: "/small", body: "12345", code: 413},
		{name: "route body within limit", method: http.MethodPost, host: "app.test", path: "/small", body: "1234", code: 200, backend: "primary"},
		{name: "upstream vhost", host: "app.test", path: "/vhost", code: 200, backend: "primary", host2: "internal.svc",
			fwd: map[string]string{"X-Forwarded-Host": "app.test"}},
		{name: "route read timeout", host: "app.test", path: "/slow", code: 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(method, front.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.code, b)
			}
			for k, v := range tc.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("response %s = %q, want %q", k, got, v)
				}
			}
			if tc.backend == "" {
				return
			}
			e := decodeEcho(t, string(b))
			if e.Backend != tc.backend {
				t.Errorf("backend %q, want %q", e.Backend, tc.backend)
			}
			if tc.path2 != "" && e.Path != tc.path2 {
				t.Errorf("upstream path %q, want %q", e.Path, tc.path2)
			}
			if tc.host2 != "" && e.Host != tc.host2 {
				t.Errorf("upstream host %q, want %q", e.Host, tc.host2)
			}
			for k, v := range tc.fwd {
				if got := e.Header.Get(k); got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
		})
	}

	if got := testutil.ToFloat64(p.metrics.canary.WithLabelValues("ns/canary", RoleCanary)); got != 1 {
		t.Errorf("canary requests = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.metrics.canary.WithLabelValues("ns/canary", RolePrimary)); got != 2 {
		t.Errorf("primary requests of the canary route = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(reg, MetricRequestDuration); n == 0 {
		t.Errorf("no %s series", MetricRequestDuration)
	}
	if got := testutil.ToFloat64(p.metrics.info.WithLabelValues("v-policies")); got != 1 {
		t.Errorf("snapshot info = %v", got)
	}
}

// TestAccessUsesTrustedClientAddress: behind a trusted proxy, the client
// address is the X-Forwarded-For entry, not the peer.
func TestAccessUsesTrustedClientAddress(t *testing.T) {
	b := newBackend(t, "b")
	p, front := newProxyOpts(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s := oneRoute("b", addr(b))
	s.Hosts[0].Routes[0].Access = &snapshot.Access{Allow: []string{"203.0.113.0/24"}}
	p.Swap(compile(t, s))
	for _, tc := range []struct {
		xff  string
		code int
	}{{"", 403}, {"203.0.113.9", 200}, {"198.51.100.1", 403}, {"203.0.113.9, 198.51.100.1", 403}, {"198.51.100.1, 203.0.113.9", 200}} {
		resp, _ := get(t, http.DefaultClient, front.URL+"/", map[string]string{"X-Forwarded-For": tc.xff})
		if resp.StatusCode != tc.code {
			t.Errorf("X-Forwarded-For %q: status %d, want %d", tc.xff, resp.StatusCode, tc.code)
		}
	}
}

// TestBalancerPolicies checks the per-backend policy from the snapshot.
func TestBalancerPolicies(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	tests := []struct {
		name string
		bal  *snapshot.Balancer
		hdr  func(i int) map[string]string
		// check gets the backends seen, in order.
		check func(t *testing.T, seen []string, cookies []string)
	}{
		{name: "round robin", check: func(t *testing.T, seen, _ []string) {
			for i := 1; i < len(seen); i++ {
				if seen[i] == seen[i-1] {
					t.Errorf("round robin repeated %s: %v", seen[i], seen)
				}
			}
		}},
		{name: "hash by header", bal: &snapshot.Balancer{HashBy: "$http_x_user"},
			hdr: func(i int) map[string]string { return map[string]string{"X-User": []string{"u1", "u2", "u3"}[i%3]} },
			check: func(t *testing.T, seen, _ []string) {
				for i := 3; i < len(seen); i++ {
					if seen[i] != seen[i-3] {
						t.Errorf("same key, different backend: %v", seen)
					}
				}
			}},
		{name: "least conn", bal: &snapshot.Balancer{Policy: snapshot.BalanceLeastConn}, check: func(t *testing.T, seen, _ []string) {
			if len(seen) != 12 {
				t.Errorf("seen %v", seen)
			}
		}},
		{name: "cookie affinity", bal: &snapshot.Balancer{Affinity: &snapshot.Affinity{Cookie: "route", MaxAgeSeconds: 60}},
			check: func(t *testing.T, seen, cookies []string) {
				if cookies[0] == "" || !strings.Contains(cookies[0], "Max-Age=60") {
					t.Fatalf("first response Set-Cookie %q", cookies[0])
				}
				for i := 1; i < len(seen); i++ {
					if seen[i] != seen[0] || cookies[i] != "" {
						t.Errorf("request %d: backend %s cookie %q, want pinned to %s", i, seen[i], cookies[i], seen[0])
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, front := newProxy(t, nil)
			s := oneRoute("ab", addr(a), addr(b))
			s.Hosts[0].Routes[0].Balancer = tc.bal
			p.Swap(compile(t, s))
			var seen, cookies []string
			pin := ""
			for i := range 12 {
				hdr := map[string]string{}
				if tc.hdr != nil {
					hdr = tc.hdr(i)
				}
				if pin != "" {
					hdr["Cookie"] = pin
				}
				resp, body := get(t, http.DefaultClient, front.URL+"/", hdr)
				seen = append(seen, decodeEcho(t, body).Backend)
				sc := resp.Header.Get("Set-Cookie")
				cookies = append(cookies, sc)
				if sc != "" {
					pin, _, _ = strings.Cut(sc, ";")
				}
			}
			tc.check(t, seen, cookies)
		})
	}
}

// TestRouteTries: Upstream.Tries bounds the retries of a connect failure.
func TestRouteTries(t *testing.T) {
	good := newBackend(t, "good")
	dead := closedAddr(t)
	for _, tc := range []struct {
		tries int
		code  int
	}{{1, 502}, {2, 200}} {
		p, front := newProxyOpts(t, Options{Retries: -1})
		s := oneRoute("mixed", dead, addr(good))
		s.Hosts[0].Routes[0].Upstream = &snapshot.Upstream{Tries: tc.tries}
		p.Swap(compile(t, s))
		// Round robin starts on the first endpoint: the dead one.
		resp, _ := get(t, http.DefaultClient, front.URL+"/", nil)
		if resp.StatusCode != tc.code {
			t.Errorf("tries %d: status %d, want %d", tc.tries, resp.StatusCode, tc.code)
		}
	}
}
