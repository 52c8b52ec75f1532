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

package hostile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

const (
	appHost   = "app.test"
	adminHost = "admin.internal"
	// Limits the gateway runs with in these tests.
	headerTimeout = time.Second
	maxHeader     = 4 << 10
	maxBody       = 1 << 10
)

// target is instance A: on app.test only /public, /limited (1 rps, burst
// 1) and /allowlisted (10.0.0.0/8 only) are routed; the admin backend is
// reachable only through the host admin.internal.
type target struct {
	gw            *gateway
	public, admin *backend
}

func prefixRoute(p string, b *backend) snapshot.Route {
	return snapshot.Route{Path: p, PathType: snapshot.PathPrefix, Source: "team/app",
		Backend: snapshot.Backend{Name: "team/" + b.name + ":80", Endpoints: []string{b.addr()}}}
}

func startTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{public: newBackend(t, "public"), admin: newBackend(t, "admin")}
	limited := prefixRoute("/limited", tg.public)
	limited.Limits = &snapshot.Limits{RPS: 1, BurstMultiplier: 1}
	allow := prefixRoute("/allowlisted", tg.admin)
	allow.Access = &snapshot.Access{Allow: []string{"10.0.0.0/8"}}
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{
		{Host: adminHost, Routes: []snapshot.Route{prefixRoute("/", tg.admin)}},
		{Host: appHost, Routes: []snapshot.Route{allow, limited, prefixRoute("/public", tg.public)}},
	}}
	tg.gw = startGateway(t, "a", s, podflags.Flags{ClientHeaderTimeout: headerTimeout, MaxHeaderBytes: maxHeader, MaxBodyBytes: maxBody})
	return tg
}

// rawResult is what came back on one raw connection.
type rawResult struct {
	codes  []int
	closed bool // the server closed the connection (rather than a deadline)
}

// raw writes payload on a new connection and reads responses until the
// server closes it or wait passes.
func raw(t *testing.T, addr, payload string, wait time.Duration) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	var r rawResult
	br := bufio.NewReader(c)
	for {
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			r.closed = !(errors.As(err, &ne) && ne.Timeout())
			return r
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("unparsable response: %v", err)
		}
		r.codes = append(r.codes, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// TestSmuggling sends requests whose framing is ambiguous. Those net/http
// refuses get a 4xx or 501; those it reads by Transfer-Encoding alone (with
// a Content-Length too, or a folded Transfer-Encoding) get their one answer.
// Either way the connection is closed after it, and the request hidden
// after the body never reaches a backend.
func TestSmuggling(t *testing.T) {
	tg := startTarget(t)
	const hidden = "GET /public/smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
	head := "POST /public/front HTTP/1.1\r\nHost: app.test\r\n"
	chunkedHidden := "0\r\n\r\n" + hidden
	// Read by Transfer-Encoding: one 200, then the connection closes.
	for name, payload := range map[string]string{
		"CL then TE":  head + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedHidden,
		"TE then CL":  head + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n" + chunkedHidden,
		"obs-fold TE": head + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n" + chunkedHidden,
	} {
		t.Run(name, func(t *testing.T) {
			r := raw(t, tg.gw.http, payload, 3*time.Second)
			if len(r.codes) != 1 || r.codes[0] != http.StatusOK || !r.closed {
				t.Fatalf("responses %v (closed %v), want one 200 and a closed connection", r.codes, r.closed)
			}
		})
	}
	// Refused by net/http.
	cases := map[string]string{
		"duplicate CL, two values":   head + "Content-Length: 0\r\nContent-Length: 47\r\n\r\n" + hidden,
		"CL list":                    head + "Content-Length: 0, 47\r\n\r\n" + hidden,
		"TE chunked with junk":       head + "Transfer-Encoding: chunked, junk\r\n\r\n" + chunkedHidden,
		"TE junk then chunked":       head + "Transfer-Encoding: junk, chunked\r\n\r\n" + chunkedHidden,
		"TE xchunked":                head + "Transfer-Encoding: xchunked\r\n\r\n" + chunkedHidden,
		"TE with space before colon": head + "Transfer-Encoding : chunked\r\n\r\n" + chunkedHidden,
		"bad chunk size":             head + "Transfer-Encoding: chunked\r\n\r\n-1\r\n\r\n" + hidden,
		"LF-only chunk terminator":   head + "Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n" + hidden,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			r := raw(t, tg.gw.http, payload, 3*time.Second)
			if len(r.codes) != 1 || (r.codes[0] < 400 || r.codes[0] >= 500) && r.codes[0] != http.StatusNotImplemented {
				t.Fatalf("responses %v, want one 4xx or 501", r.codes)
			}
			if !r.closed {
				t.Fatal("connection left open after an ambiguous request")
			}
		})
	}
	for _, u := range append(tg.public.requests(), tg.admin.requests()...) {
		if strings.Contains(u, "smuggled") {
			t.Fatalf("the hidden request reached a backend: %q", u)
		}
	}
	tg.gw.healthy(t)
}

// TestOversized: a header block over --max-header-bytes gets 431, a body
// over --max-body-bytes 413 (declared or chunked), and neither body reaches
// the backend whole.
func TestOversized(t *testing.T) {
	tg := startTarget(t)
	big := "X-Big: " + strings.Repeat("a", 64<<10) + "\r\n"
	r := raw(t, tg.gw.http, "GET /public/h HTTP/1.1\r\nHost: app.test\r\n"+big+"\r\n", 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header: %v, want [431]", r.codes)
	}
	many := strings.Repeat("X-Many: b\r\n", 2000)
	r = raw(t, tg.gw.http, "GET /public/h HTTP/1.1\r\nHost: app.test\r\n"+many+"\r\n", 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("many headers: %v, want [431]", r.codes)
	}
	body := strings.Repeat("z", 4*maxBody)
	r = raw(t, tg.gw.http, "POST /public/declared HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n"+body, 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared body: %v, want [413]", r.codes)
	}
	r = raw(t, tg.gw.http, "POST /public/chunked HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n"+body+"\r\n0\r\n\r\n", 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body: %v, want [413]", r.codes)
	}
	for _, u := range tg.public.requests() {
		if u == "/public/h" || u == "/public/declared" {
			t.Fatalf("%s reached the backend", u)
		}
	}
	tg.gw.healthy(t)
}

// TestSlowloris: clients that dribble a header line every 200 ms are cut
// off by the header timeout (1 s) while another client keeps being served.
func TestSlowloris(t *testing.T) {
	tg := startTarget(t)
	const slow = 20
	var wg sync.WaitGroup
	var cutOff, lasted atomic.Int32
	start := time.Now()
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", tg.gw.http)
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.WriteString(c, "GET /public/slow HTTP/1.1\r\nHost: app.test\r\n")
			deadline := time.Now().Add(5 * headerTimeout)
			for time.Now().Before(deadline) {
				if _, err := io.WriteString(c, "X-Dribble: 1\r\n"); err != nil {
					cutOff.Add(1)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						cutOff.Add(1) // closed by the server (with or without a 408)
						return
					}
				} else {
					cutOff.Add(1) // the server answered (408) instead of waiting
					return
				}
			}
			lasted.Add(1)
		}()
	}
	served := 0
	for time.Since(start) < 2*headerTimeout {
		if code, _ := do(t, tg.gw.http, appHost, "/public/ok", nil); code != http.StatusOK {
			t.Fatalf("a normal client got %d during the attack", code)
		}
		served++
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if cutOff.Load() != slow || lasted.Load() != 0 {
		t.Fatalf("%d of %d slow clients cut off, %d lasted %s", cutOff.Load(), slow, lasted.Load(), 5*headerTimeout)
	}
	if took := time.Since(start); took > 4*headerTimeout {
		t.Fatalf("slow clients cut off after %s, want about %s", took, headerTimeout)
	}
	for _, u := range tg.public.requests() {
		if u == "/public/slow" {
			t.Fatal("a slow request reached the backend")
		}
	}
	t.Logf("%d slow clients cut off; %d normal requests served meanwhile", slow, served)
	tg.gw.healthy(t)
}

// TestPathTraversal: paths that climb out of /public, or spell /admin with
// escapes, slashes or backslashes, never reach the admin backend (which
// app.test does not route) and never reach the public backend as a path
// outside /public.
func TestPathTraversal(t *testing.T) {
	tg := startTarget(t)
	paths := []string{
		"/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "/public/.%2e/admin",
		"/public%2F..%2Fadmin", "/public/..%2Fadmin", "/public/..%2fadmin", "//admin", "///admin/x",
		`/public/..\admin`, "/public/..%5Cadmin", `/public\..\admin`, "/public/%252e%252e/admin",
		"/admin", "/ADMIN", "/%61dmin", "/public/./../admin", "/public/../../../../admin", "/./admin",
		"/public%2F%2E%2E%2Fadmin", "/public/%2e%2e%2f%2e%2e/admin", "/public/..;/admin",
	}
	for _, p := range paths {
		r := raw(t, tg.gw.http, "GET "+p+" HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n", 3*time.Second)
		if len(r.codes) != 1 || r.codes[0] >= 500 {
			t.Fatalf("%s: responses %v, want one answer below 500", p, r.codes)
		}
		if r.codes[0] == http.StatusOK {
			// Only paths that stay under /public may be served.
			last := tg.public.requests()
			if got := last[len(last)-1]; !strings.HasPrefix(path.Clean(decodeAll(got))+"/", "/public/") {
				t.Fatalf("%s reached the public backend as %q", p, got)
			}
		}
	}
	if got := tg.admin.requests(); len(got) > 0 {
		t.Fatalf("the admin backend was reached: %q", got)
	}
	tg.gw.healthy(t)
}

// decodeAll percent-decodes s and reads '\' as '/', as a naive backend.
func decodeAll(s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if v, ok := unhex2(s[i+1], s[i+2]); ok {
				c, i = v, i+2
			}
		}
		if c == '\\' {
			c = '/'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex2(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}

// TestSpoofedForwardedFor: the peer (127.0.0.1) is not a trusted proxy, so
// X-Forwarded-For and X-Real-IP naming an allowed address do not pass the
// allow-list, and a new spoofed address per request does not get a new
// rate-limit bucket.
func TestSpoofedForwardedFor(t *testing.T) {
	tg := startTarget(t)
	for _, h := range []map[string]string{
		{"X-Forwarded-For": "10.0.0.1"},
		{"X-Real-IP": "10.0.0.1"},
		{"X-Forwarded-For": "10.0.0.1, 10.0.0.2", "X-Real-IP": "10.0.0.1", "Forwarded": "for=10.0.0.1"},
	} {
		if code, _ := do(t, tg.gw.http, appHost, "/allowlisted", h); code != http.StatusForbidden {
			t.Fatalf("allow-list with %v: %d, want 403", h, code)
		}
	}
	if got := tg.admin.requests(); len(got) > 0 {
		t.Fatalf("the allow-listed backend was reached: %q", got)
	}
	const n = 10
	start := time.Now()
	ok, limited := 0, 0
	for i := range n {
		code, _ := do(t, tg.gw.http, appHost, "/limited", map[string]string{"X-Forwarded-For": "10.9.0." + string(rune('1'+i))})
		switch code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("rate-limited route: %d", code)
		}
	}
	// 1 rps with a burst of 1: at most 1 + one per elapsed second pass.
	if allowed := 1 + int(time.Since(start)/time.Second); ok > allowed || ok+limited != n {
		t.Fatalf("%d of %d requests with distinct spoofed X-Forwarded-For passed (allowed %d)", ok, n, allowed)
	}
	t.Logf("rate limit: %d passed, %d limited", ok, limited)
	tg.gw.healthy(t)
}

// TestHostAcrossInstances: two gatewaypod processes with different
// snapshots; B answers 404 to every spelling of A's host, and A's backends
// never see B's traffic.
func TestHostAcrossInstances(t *testing.T) {
	tg := startTarget(t)
	other := newBackend(t, "b")
	b := startGateway(t, "b", &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{
		{Host: "b.test", Routes: []snapshot.Route{prefixRoute("/", other)}},
	}}, podflags.Flags{})
	for _, h := range []string{appHost, "APP.TEST", "app.test.", "app.test:80", adminHost} {
		if code, _ := do(t, b.http, h, "/public/x", nil); code != http.StatusNotFound {
			t.Fatalf("Host %q sent to B: %d, want 404", h, code)
		}
	}
	// Absolute-form request line naming A's host, and Host naming B's.
	r := raw(t, b.http, "GET http://app.test/public/abs HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n", 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] == http.StatusOK && len(tg.public.requests()) > 0 {
		t.Fatalf("absolute-form to B: %v", r.codes)
	}
	r = raw(t, tg.gw.http, "GET /public/x HTTP/1.1\r\nHost: b.test\r\nX-Forwarded-Host: app.test\r\nConnection: close\r\n\r\n", 3*time.Second)
	if len(r.codes) != 1 || r.codes[0] != http.StatusNotFound {
		t.Fatalf("B's host with X-Forwarded-Host of A sent to A: %v, want [404]", r.codes)
	}
	if got := append(tg.public.requests(), tg.admin.requests()...); len(got) > 0 {
		t.Fatalf("A's backends reached through B: %q", got)
	}
	if code, body := do(t, b.http, "b.test", "/", nil); code != http.StatusOK || body != "b" {
		t.Fatalf("B's own host: %d %q", code, body)
	}
	tg.gw.healthy(t)
	b.healthy(t)
}
