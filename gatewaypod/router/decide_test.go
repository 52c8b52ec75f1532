package router

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func decideSnapshot() *snapshot.Snapshot {
	be := func(n string) snapshot.Backend { return snapshot.Backend{Name: n} }
	return &snapshot.Snapshot{
		DefaultBackend: &snapshot.Backend{Name: "default"},
		Certificates: []snapshot.Certificate{
			{Secret: "ns/wild", Hash: "0123456789abcdef", Hosts: []string{"*.tls.com"}},
			{Secret: "ns/exact", Hash: "0123456789abcdef", Hosts: []string{"a.tls.com"}},
		},
		Hosts: []snapshot.VirtualHost{
			{Host: "canary.com", Routes: []snapshot.Route{
				{Path: "/multi", PathType: snapshot.PathPrefix, Backend: be("primary"), Canaries: []snapshot.Canary{
					{Backend: be("c1"), Header: "X-A", Weight: 10, WeightTotal: 50},
					{Backend: be("c2"), Header: "X-B", HeaderValues: []string{"b1", "b2"}, Weight: 20, WeightTotal: 50,
						Balancer: &snapshot.Balancer{Policy: snapshot.BalanceEWMA}},
				}},
				{Path: "/", PathType: snapshot.PathPrefix, Backend: be("primary"), Balancer: &snapshot.Balancer{Policy: snapshot.BalanceLeastConn},
					Canaries: []snapshot.Canary{{Backend: be("canary"), Header: "X-Canary", Cookie: "canary", Weight: 30}}},
			}},
			{Host: "value.com", Routes: []snapshot.Route{
				{Path: "/", PathType: snapshot.PathPrefix, Backend: be("primary"),
					Canaries: []snapshot.Canary{{Backend: be("canary"), Header: "X-Canary", HeaderValues: []string{"yes"}}}},
			}},
			{Host: "pattern.com", Routes: []snapshot.Route{
				{Path: "/", PathType: snapshot.PathPrefix, Backend: be("primary"),
					Canaries: []snapshot.Canary{{Backend: be("canary"), Header: "X-Canary", HeaderPattern: "^(beta|gamma)-", Cookie: "c", CookieValues: []string{"v1"}}}},
			}},
			{Host: "rewrite.com", Routes: []snapshot.Route{
				{Path: "/something(/|$)(.*)", PathType: snapshot.PathRegex, Backend: be("rx"),
					Rewrite: &snapshot.Rewrite{Target: "/$2", ForwardedPrefix: "/something"}},
				{Path: "/q(.*)", PathType: snapshot.PathRegex, Backend: be("q"), Rewrite: &snapshot.Rewrite{Target: "/new?x=$1"}},
				{Path: "/n(.*)", PathType: snapshot.PathRegex, Backend: be("n"), Rewrite: &snapshot.Rewrite{Target: "/n2$1abc?"}},
				{Path: "/strip", PathType: snapshot.PathPrefix, Backend: be("strip"), Rewrite: &snapshot.Rewrite{Target: "/"}},
			}},
			{Host: "redirect.com", Routes: []snapshot.Route{
				{Path: "/moved", PathType: snapshot.PathPrefix, Backend: be("x"), Redirect: &snapshot.Redirect{URL: "https://new.example/", Code: 301, SSL: true}},
				{Path: "/", PathType: snapshot.PathPrefix, Backend: be("app"), Redirect: &snapshot.Redirect{SSL: true, AppRoot: "/app"}},
			}},
			{Host: "www.redirect.com", RedirectHost: "redirect.com"},
			{Host: "policy.com", Routes: []snapshot.Route{
				{Path: "/", PathType: snapshot.PathPrefix, Backend: be("p"),
					Access: &snapshot.Access{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.1.0.0/16"}},
					CORS:   &snapshot.CORS{AllowOrigins: []string{"https://*.good.com", "https://exact.org:8443"}}},
			}},
		},
	}
}

func TestDecide(t *testing.T) {
	tests := map[string]struct {
		method, url string
		header      http.Header
		cookie      string
		tls         bool
		draw        int // 1-based result of the weighted draw; 0 fails the test if drawn
		want        string
		wantPath    string
		wantQuery   string
		wantCode    int
		wantLoc     string
		wantFwd     string
		wantBal     string
	}{
		// canary: ingress-nginx order header -> cookie -> weight
		"header always":                 {url: "http://canary.com/x", header: http.Header{"X-Canary": {"always"}}, want: "canary"},
		"header never blocks cookie":    {url: "http://canary.com/x", header: http.Header{"X-Canary": {"never"}}, cookie: "canary=always", want: "primary", wantBal: "least_conn"},
		"header other falls to cookie":  {url: "http://canary.com/x", header: http.Header{"X-Canary": {"maybe"}}, cookie: "canary=always", want: "canary"},
		"cookie never blocks weight":    {url: "http://canary.com/x", cookie: "canary=never", want: "primary", wantBal: "least_conn"},
		"cookie other falls to weight":  {url: "http://canary.com/x", cookie: "canary=x", draw: 30, want: "canary"},
		"weight draw at the boundary":   {url: "http://canary.com/x", draw: 30, want: "canary"},
		"weight draw above":             {url: "http://canary.com/x", draw: 31, want: "primary", wantBal: "least_conn"},
		"header value matches":          {url: "http://value.com/", header: http.Header{"X-Canary": {"yes"}}, want: "canary"},
		"header value bypasses always":  {url: "http://value.com/", header: http.Header{"X-Canary": {"always"}}, want: "primary"},
		"header value bypasses never":   {url: "http://value.com/", header: http.Header{"X-Canary": {"never"}}, want: "primary"},
		"header pattern unanchored":     {url: "http://pattern.com/", header: http.Header{"X-Canary": {"beta-1"}}, want: "canary"},
		"header pattern no match":       {url: "http://pattern.com/", header: http.Header{"X-Canary": {"alpha"}}, want: "primary"},
		"custom cookie value":           {url: "http://pattern.com/", cookie: "c=v1", want: "canary"},
		"custom cookie replaces always": {url: "http://pattern.com/", cookie: "c=always", want: "primary"},
		"multi: first header":           {url: "http://canary.com/multi", header: http.Header{"X-A": {"always"}, "X-B": {"b1"}}, want: "c1"},
		"multi: second header values":   {url: "http://canary.com/multi", header: http.Header{"X-B": {"b2"}}, want: "c2", wantBal: "ewma"},
		"multi: first never ends":       {url: "http://canary.com/multi", header: http.Header{"X-A": {"never"}, "X-B": {"b2"}}, want: "primary"},
		"multi: weight slice 1":         {url: "http://canary.com/multi", draw: 10, want: "c1"},
		"multi: weight slice 2":         {url: "http://canary.com/multi", draw: 30, want: "c2", wantBal: "ewma"},
		"multi: weight rest":            {url: "http://canary.com/multi", draw: 31, want: "primary"},
		// rewrite
		"rewrite bare":                   {url: "http://rewrite.com/something", want: "rx", wantPath: "/", wantFwd: "/something"},
		"rewrite slash":                  {url: "http://rewrite.com/something/", want: "rx", wantPath: "/", wantFwd: "/something"},
		"rewrite capture, query kept":    {url: "http://rewrite.com/SOMETHING/new/x?a=1", want: "rx", wantPath: "/new/x", wantQuery: "a=1", wantFwd: "/something"},
		"regex anchored at the start":    {url: "http://rewrite.com/a/something/x", want: "default"},
		"target query first, then args":  {url: "http://rewrite.com/q7?a=1", want: "q", wantPath: "/new", wantQuery: "x=7&a=1"},
		"$1abc and trailing ? drop args": {url: "http://rewrite.com/n-z?a=1", want: "n", wantPath: "/n2-zabc", wantQuery: ""},
		"literal prefix rewrite":         {url: "http://rewrite.com/strip/a/b", want: "strip", wantPath: "/"},
		// redirects
		"url redirect before ssl":      {url: "http://redirect.com/moved/x", wantCode: 301, wantLoc: "https://new.example/"},
		"app root on /":                {url: "http://redirect.com/", wantCode: 302, wantLoc: "http://redirect.com/app"},
		"ssl redirect on plain http":   {url: "http://redirect.com:8080/a?b=c", wantCode: 308, wantLoc: "https://redirect.com/a?b=c"},
		"no ssl redirect over https":   {url: "https://redirect.com/a", tls: true, want: "app"},
		"no ssl redirect for acme":     {url: "http://redirect.com/.well-known/acme-challenge/tok", want: "app"},
		"from-to-www":                  {url: "http://www.redirect.com/p?q=1", wantCode: 308, wantLoc: "http://redirect.com/p?q=1"},
		"no route: global default":     {url: "http://unknown.org/", want: "default"},
		"no route on known host: 404s": {url: "http://value.com.:80/", want: "primary"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rt, err := CompileWithOptions(decideSnapshot(), Options{IntN: func(n int) int {
				if tc.draw == 0 {
					t.Fatalf("unexpected weighted draw")
				}
				return tc.draw - 1
			}})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(cmpOr(tc.method, "GET"), tc.url, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			if !tc.tls {
				req.TLS = nil
			} else if req.TLS == nil {
				req.TLS = &tls.ConnectionState{}
			}
			d := rt.Decide(req)
			if tc.wantCode != 0 {
				if d.Redirect == nil || d.Redirect.Code != tc.wantCode || d.Redirect.Location != tc.wantLoc {
					t.Fatalf("redirect = %+v, want %d %s", d.Redirect, tc.wantCode, tc.wantLoc)
				}
				return
			}
			if d.Redirect != nil {
				t.Fatalf("unexpected redirect %+v", d.Redirect)
			}
			got := ""
			if d.Backend != nil {
				got = d.Backend.Name
			}
			if got != tc.want {
				t.Errorf("backend = %q, want %q", got, tc.want)
			}
			if (d.Canary != nil) != (got != "primary" && d.Route != nil && len(d.Route.Canaries) > 0) {
				t.Errorf("Canary = %v for backend %q", d.Canary, got)
			}
			wantPath := cmpOr(tc.wantPath, req.URL.Path)
			if d.Path != wantPath || d.Rewritten != (tc.wantPath != "") {
				t.Errorf("path = %q (rewritten %v), want %q", d.Path, d.Rewritten, wantPath)
			}
			if tc.wantPath != "" && d.RawQuery != tc.wantQuery {
				t.Errorf("query = %q, want %q", d.RawQuery, tc.wantQuery)
			}
			if d.ForwardedPrefix != tc.wantFwd {
				t.Errorf("forwarded prefix = %q, want %q", d.ForwardedPrefix, tc.wantFwd)
			}
			gotBal := ""
			if d.Balancer != nil {
				gotBal = d.Balancer.Policy
			}
			if gotBal != tc.wantBal {
				t.Errorf("balancer = %q, want %q", gotBal, tc.wantBal)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestDecidePolicies(t *testing.T) {
	rt, err := Compile(decideSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Decide(httptest.NewRequest("GET", "http://policy.com/", nil))
	for addr, want := range map[string]bool{"10.2.3.4": true, "10.1.2.3": false, "192.168.0.1": false, "::ffff:10.2.3.4": true} {
		if got := d.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	for origin, want := range map[string]string{
		"https://a.good.com": "https://a.good.com", "https://A.Good.com": "https://A.Good.com",
		"https://a.b.good.com": "", "https://good.com": "", "http://a.good.com": "",
		"https://exact.org:8443": "https://exact.org:8443", "https://exact.org": "",
	} {
		got, ok := d.AllowOrigin(origin)
		if got != want || ok != (want != "") {
			t.Errorf("AllowOrigin(%s) = %q %v, want %q", origin, got, ok, want)
		}
	}
	for name, want := range map[string]string{"a.tls.com": "ns/exact", "B.tls.com:443": "ns/wild", "x.y.tls.com": "", "tls.com": ""} {
		got := ""
		if c := rt.Certificate(name); c != nil {
			got = c.Secret
		}
		if got != want {
			t.Errorf("Certificate(%s) = %q, want %q", name, got, want)
		}
	}
	// Canary and default backends are reported for per-backend state pruning.
	names := map[string]bool{}
	for _, n := range rt.BackendNames() {
		names[n] = true
	}
	for _, n := range []string{"c1", "c2", "canary", "default"} {
		if !names[n] {
			t.Errorf("BackendNames lacks %q", n)
		}
	}
}

func TestExpand(t *testing.T) {
	src := "/abc/def"
	m := []int{0, 8, 1, 4, 5, 8, -1, -1}
	for target, want := range map[string]string{
		"/$1":      "/abc",
		"/$2x":     "/defx",
		"/${2}0":   "/def0",
		"/$3-":     "/-",
		"/$9":      "/",
		"/$":       "/$",
		"/${x}":    "/${x}",
		"/${":      "/${",
		"/$$1":     "/$abc",
		"/no-refs": "/no-refs",
	} {
		if got := expand(target, src, m); got != want {
			t.Errorf("expand(%q) = %q, want %q", target, got, want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	rt, err := Compile(decideSnapshot())
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://rewrite.com/something/new/x?a=1", nil)
	b.ReportAllocs()
	for b.Loop() {
		rt.Decide(req)
	}
}
