package proxy

import (
	"cmp"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// statusBackend answers ?status=N (default 200) with body "app <N>", or
// ?size=N bytes of body.
func statusBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		if code == 0 {
			code = 200
		}
		w.Header().Set("X-App", "1")
		w.WriteHeader(code)
		if n, _ := strconv.Atoi(r.URL.Query().Get("size")); n > 0 {
			_, _ = w.Write([]byte(strings.Repeat("x", n)))
			return
		}
		_, _ = w.Write([]byte("app " + strconv.Itoa(code)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCustomErrors(t *testing.T) {
	app := statusBackend(t)
	pages := newBackend(t, "pages")
	instDef := newBackend(t, "instance-default")
	appB := snapshot.Backend{Name: "shop/app:80", Endpoints: []string{addr(app)}}
	pagesB := &snapshot.Backend{Name: "shop/pages:80", Endpoints: []string{addr(pages)}}
	route := func(path string, b snapshot.Backend, ce *snapshot.CustomErrors) snapshot.Route {
		return snapshot.Route{Path: path, PathType: snapshot.PathPrefix, Backend: b, Source: "shop/web", CustomErrors: ce}
	}
	s := &snapshot.Snapshot{Version: "v-ce", DefaultBackend: &snapshot.Backend{Name: "ops/default:80", Endpoints: []string{addr(instDef)}},
		Hosts: []snapshot.VirtualHost{{Host: "shop.test", Routes: []snapshot.Route{
			route("/ebdown", appB, &snapshot.CustomErrors{Codes: []int{503}, Backend: &snapshot.Backend{Name: "shop/pages-down:80", Endpoints: []string{closedAddr(t)}}}),
			route("/empty", snapshot.Backend{Name: "shop/empty:80"}, &snapshot.CustomErrors{Codes: []int{503}, Backend: pagesB}),
			route("/plain", appB, nil),
			route("/dflt", appB, &snapshot.CustomErrors{Codes: []int{500}}),
			route("/down", snapshot.Backend{Name: "shop/gone:80", Endpoints: []string{closedAddr(t)}}, &snapshot.CustomErrors{Codes: []int{502}, Backend: pagesB}),
			route("/", appB, &snapshot.CustomErrors{Codes: []int{404, 503}, Backend: pagesB}),
		}}}}
	p, front := newProxy(t, nil)
	p.Swap(compile(t, s))
	c := front.Client()

	type want struct {
		status   int
		page     string // echo backend that served the body; "" = not an error page
		body     string // substring of the body when not an error page
		xcode    string
		service  string
		original string
	}
	tests := map[string]struct {
		method string
		path   string
		want   want
	}{
		"listed upstream status: error page body, original status": {path: "/x?status=503", want: want{status: 503, page: "pages", xcode: "503", service: "app", original: "/x?status=503"}},
		"another listed status":                     {path: "/y?status=404", want: want{status: 404, page: "pages", xcode: "404", service: "app", original: "/y?status=404"}},
		"unlisted status passes":                    {path: "/x?status=500", want: want{status: 500, body: "app 500"}},
		"success passes":                            {path: "/x", want: want{status: 200, body: "app 200"}},
		"large intercepted body":                    {path: "/x?status=503&size=1048576", want: want{status: 503, page: "pages", xcode: "503", service: "app", original: "/x?status=503&size=1048576"}},
		"no annotation backend: instance default":   {path: "/dflt?status=500", want: want{status: 500, page: "instance-default", xcode: "500", service: "app", original: "/dflt?status=500"}},
		"gateway's own 502 is intercepted":          {path: "/down", want: want{status: 502, page: "pages", xcode: "502", service: "gone", original: "/down"}},
		"gateway's own 503 is intercepted":          {path: "/empty", want: want{status: 503, page: "pages", xcode: "503", service: "empty", original: "/empty"}},
		"error backend down: plain original status": {path: "/ebdown?status=503", want: want{status: 503, body: "Service Unavailable"}},
		"route without custom errors":               {path: "/plain?status=503", want: want{status: 503, body: "app 503"}},
		"HEAD gets the status, no body":             {method: http.MethodHead, path: "/x?status=503", want: want{status: 503}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(cmp.Or(tc.method, http.MethodGet), front.URL+tc.path, nil)
			req.Host = "shop.test"
			req.Header.Set("Accept", "application/json")
			req.Header.Set("X-Request-Id", "req-42")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sb strings.Builder
			if _, err := io.Copy(&sb, resp.Body); err != nil {
				t.Fatal(err)
			}
			body := sb.String()
			if resp.StatusCode != tc.want.status {
				t.Fatalf("status %d, want %d (body %.80q)", resp.StatusCode, tc.want.status, body)
			}
			if tc.method == http.MethodHead {
				if body != "" {
					t.Errorf("HEAD body %q", body)
				}
				return
			}
			if tc.want.page == "" {
				if !strings.Contains(body, tc.want.body) {
					t.Errorf("body %.80q, want it to contain %q", body, tc.want.body)
				}
				return
			}
			if resp.Header.Get("X-App") != "" {
				t.Error("the upstream's headers leaked into the error page")
			}
			e := decodeEcho(t, body)
			if e.Backend != tc.want.page || e.Path != "/" || e.Host != "shop.test" {
				t.Errorf("served by %s path %s host %s, want %s / shop.test", e.Backend, e.Path, e.Host, tc.want.page)
			}
			for k, v := range map[string]string{"X-Code": tc.want.xcode, "X-Format": "application/json", "X-Original-Uri": tc.want.original,
				"X-Namespace": "shop", "X-Ingress-Name": "web", "X-Service-Name": tc.want.service, "X-Service-Port": "80", "X-Request-Id": "req-42"} {
				if got := e.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("error backend gets the request id the upstream got", func(t *testing.T) {
		var upstreamID string
		idApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			upstreamID = r.Header.Get("X-Request-Id")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer idApp.Close()
		s2 := &snapshot.Snapshot{Version: "v-ce2", Hosts: []snapshot.VirtualHost{{Host: "shop.test", Routes: []snapshot.Route{
			route("/", snapshot.Backend{Name: "shop/id:80", Endpoints: []string{addr(idApp)}}, &snapshot.CustomErrors{Codes: []int{503}, Backend: pagesB})}}}}
		p.Swap(compile(t, s2))
		defer p.Swap(compile(t, s))
		resp, body := get(t, c, front.URL+"/x", map[string]string{"Host": "shop.test"})
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := decodeEcho(t, body).Header.Get("X-Request-Id"); upstreamID == "" || got != upstreamID {
			t.Errorf("error backend got X-Request-Id %q, the upstream %q", got, upstreamID)
		}
	})
	// The proxy is still fine after the discarded bodies.
	resp, body := get(t, c, front.URL+"/x", map[string]string{"Host": "shop.test"})
	if resp.StatusCode != 200 || body != "app 200" {
		t.Errorf("after interceptions: %d %q", resp.StatusCode, body)
	}
}
