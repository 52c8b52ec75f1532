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
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func newProxyOpts(t *testing.T, opts Options) (*Proxy, *httptest.Server) {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return p, front
}

func backendFunc(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func decodeEcho(t *testing.T, body string) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return e
}

func TestForwardedHeadersTrust(t *testing.T) {
	b := newBackend(t, "b")
	spoof := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 10.1.1.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "edge.test",
		"X-Forwarded-Port":  "443",
		"X-Real-IP":         "6.6.6.6",
		"Forwarded":         "for=6.6.6.6",
	}
	tests := map[string]struct {
		trusted []netip.Prefix
		want    map[string]string
	}{
		"untrusted peer: replaced": {
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Real-Ip": "127.0.0.1",
				"X-Forwarded-Host": "app.test", "Forwarded": ""},
		},
		"trusted peer: extended, real IP is the right-most untrusted": {
			trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
			want: map[string]string{"X-Forwarded-For": "203.0.113.9, 10.1.1.1, 127.0.0.1", "X-Forwarded-Proto": "https",
				"X-Real-Ip": "203.0.113.9", "X-Forwarded-Host": "edge.test", "X-Forwarded-Port": "443", "Forwarded": "for=6.6.6.6"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, front := newProxyOpts(t, Options{TrustedProxies: tc.trusted})
			p.Swap(compile(t, oneRoute("b", addr(b))))
			hdr := map[string]string{"Host": "app.test"}
			for k, v := range spoof {
				hdr[k] = v
			}
			_, body := get(t, front.Client(), front.URL+"/", hdr)
			e := decodeEcho(t, body)
			for k, want := range tc.want {
				if got := strings.Join(e.Header.Values(k), ","); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tc.trusted == nil {
				_, port, _ := net.SplitHostPort(addr(front))
				if got := e.Header.Get("X-Forwarded-Port"); got != port {
					t.Errorf("X-Forwarded-Port = %q, want the listener port %s", got, port)
				}
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	b := newBackend(t, "b")
	p, front := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("b", addr(b))))
	_, body := get(t, front.Client(), front.URL+"/", map[string]string{"X-Request-ID": "abc-123"})
	if got := decodeEcho(t, body).Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "abc-123" {
		t.Errorf("kept X-Request-Id = %q", got)
	}
	seen := map[string]bool{}
	for range 3 {
		_, body := get(t, front.Client(), front.URL+"/", map[string]string{"X-Request-ID": "bad" + strings.Repeat("x", 200)})
		id := decodeEcho(t, body).Header.Get("X-Request-Id")
		if id == "" || seen[id] || strings.Contains(id, "bad") {
			t.Errorf("generated X-Request-Id %q (seen %v)", id, seen)
		}
		seen[id] = true
	}
}

// TestRetryOtherEndpoint: with one dead and one live endpoint, idempotent
// requests always succeed (retried on the other endpoint); a POST with a
// body is never retried; with retries disabled some GETs fail.
func TestRetryOtherEndpoint(t *testing.T) {
	b := newBackend(t, "live")
	dead := closedAddr(t)
	snap := oneRoute("svc", dead, addr(b))
	noEject := &balancer.PassiveHealth{}

	p, front := newProxyOpts(t, Options{PassiveHealth: noEject})
	p.Swap(compile(t, snap))
	for i := range 6 {
		if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d = %d %q", i, resp.StatusCode, body)
		}
	}
	codes := map[int]int{}
	for range 4 {
		resp, err := front.Client().Post(front.URL+"/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusBadGateway] == 0 || codes[http.StatusOK] == 0 {
		t.Errorf("POST status counts %v, want both 200 (live) and 502 (dead, not retried)", codes)
	}

	p2, front2 := newProxyOpts(t, Options{PassiveHealth: noEject, Retries: -1})
	p2.Swap(compile(t, snap))
	failed := 0
	for range 4 {
		if resp, _ := get(t, front2.Client(), front2.URL+"/", nil); resp.StatusCode == http.StatusBadGateway {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("without retries %d of 4 GETs failed, want 2", failed)
	}
}

// TestPassiveHealthEjects: a dead endpoint is ejected after consecutive
// failures and gets no more traffic; the state survives a swap.
func TestPassiveHealthEjects(t *testing.T) {
	var hits atomic.Int64
	bad := backendFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	})
	good := newBackend(t, "good")
	p, front := newProxyOpts(t, Options{PassiveHealth: &balancer.PassiveHealth{MaxFailures: 3, BaseEjection: time.Hour}})
	snap := oneRoute("svc", addr(bad), addr(good))
	p.Swap(compile(t, snap))
	for range 10 {
		get(t, front.Client(), front.URL+"/", nil)
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("5xx endpoint got %d requests, want 3 (then ejected)", got)
	}
	p.Swap(compile(t, snap))
	for range 4 {
		if resp, _ := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("after swap status %d, want 200 from the healthy endpoint", resp.StatusCode)
		}
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("ejection did not survive the swap: %d hits", got)
	}
	if got := p.registry.Ejected(); got != 1 {
		t.Errorf("ejected endpoints = %d, want 1", got)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	p, front := newProxyOpts(t, Options{MaxBodyBytes: 10})
	p.Swap(compile(t, oneRoute("b", addr(b))))
	post := func(body io.Reader) (int, string) {
		resp, err := front.Client().Post(front.URL+"/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	if code, body := post(strings.NewReader("0123456789")); code != 200 || body != "10" {
		t.Errorf("10-byte body: %d %q", code, body)
	}
	if code, _ := post(strings.NewReader("0123456789x")); code != http.StatusRequestEntityTooLarge {
		t.Errorf("11-byte body with Content-Length: %d, want 413", code)
	}
	// Unknown length (chunked): refused while streaming.
	if code, _ := post(io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("abc"))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("13-byte chunked body: %d, want 413", code)
	}
}

func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	p, front := newProxyOpts(t, Options{ReadTimeout: 100 * time.Millisecond})
	p.Swap(compile(t, oneRoute("b", addr(b))))
	start := time.Now()
	resp, _ := get(t, front.Client(), front.URL+"/", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("Server") != ServerHeader {
		t.Errorf("status %d (Server %q), want 504 from the proxy", resp.StatusCode, resp.Header.Get("Server"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestStreamingAndTrailers: a chunked response with trailers arrives with
// its trailers; an event stream is flushed event by event.
func TestStreamingAndTrailers(t *testing.T) {
	next := make(chan struct{})
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trailers":
			w.Header().Set("Trailer", "Grpc-Status")
			w.Header().Set("X-Keep", "1")
			w.Header().Set("Connection", "X-Drop")
			w.Header().Set("X-Drop", "hop")
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", "") // stream
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
			}
			io.WriteString(w, "data: two\n\n")
		}
	})
	p, front := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("b", addr(b))))

	resp, body := get(t, front.Client(), front.URL+"/trailers", nil)
	if body != "part1,part2" {
		t.Errorf("body %q", body)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("X-Late") != "yes" {
		t.Errorf("trailers %v", resp.Trailer)
	}
	if resp.Header.Get("X-Keep") != "1" || resp.Header.Get("X-Drop") != "" {
		t.Errorf("headers %v: want X-Keep, and X-Drop (listed in Connection) removed", resp.Header)
	}

	resp2, err := front.Client().Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp2.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: one\n" {
			t.Errorf("first event %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event not flushed while the stream is open")
	}
	close(next)
}

// TestBodiesBothWays relays a 1 MiB upload of unknown length and a 1 MiB
// download intact, and HEAD/204/304 responses without bodies.
func TestBodiesBothWays(t *testing.T) {
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x %s", n, h.Sum(nil), r.Header.Get("Transfer-Encoding")+strings.Join(r.TransferEncoding, ","))
		case "/download":
			w.Header().Set("Content-Length", fmt.Sprint(1<<20))
			w.Write(bytes.Repeat([]byte("z"), 1<<20))
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	})
	p, front := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("b", addr(b))))
	c := front.Client()

	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	sum := sha256.Sum256(data)
	resp, err := c.Post(front.URL+"/upload", "application/octet-stream", io.MultiReader(bytes.NewReader(data))) // unknown length
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x chunked", len(data), sum); string(got) != want {
		t.Errorf("upload: backend saw %q, want %q", got, want)
	}

	resp, body := get(t, c, front.URL+"/download", nil)
	if len(body) != 1<<20 || resp.ContentLength != 1<<20 {
		t.Errorf("download: %d bytes, Content-Length %d", len(body), resp.ContentLength)
	}
	for _, path := range []string{"/204", "/304"} {
		if resp, body := get(t, c, front.URL+path, nil); body != "" || resp.StatusCode != map[string]int{"/204": 204, "/304": 304}[path] {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, front.URL+"/x", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Errorf("HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	// The keep-alive connection is still usable after all of that.
	if _, body := get(t, c, front.URL+"/x", nil); body != "hello" {
		t.Errorf("after HEAD: %q", body)
	}
}

// TestStaleKeepAlive: a backend that silently closes each connection after
// one response (no "Connection: close") makes the pooled connection stale;
// the next GET must still succeed, on a fresh connection.
func TestStaleKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(20 * time.Millisecond)
			}()
		}
	}()
	p, front := newProxyOpts(t, Options{Retries: -1}) // the stale retry is not an endpoint retry
	p.Swap(compile(t, oneRoute("b", ln.Addr().String())))
	for i := range 5 {
		if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
		if ct, ok := resp0(t, front); ok {
			t.Fatalf("Content-Type %q added to a response that had none (sniffed)", ct)
		}
		time.Sleep(50 * time.Millisecond) // the backend has closed by now
	}
}

// resp0 fetches / and returns its Content-Type header, if any.
func resp0(t *testing.T, front *httptest.Server) (string, bool) {
	t.Helper()
	resp, _ := get(t, front.Client(), front.URL+"/", nil)
	v, ok := resp.Header["Content-Type"]
	return strings.Join(v, ","), ok
}

func TestBadPath(t *testing.T) {
	b := newBackend(t, "b")
	p, front := newProxy(t, nil)
	p.Swap(compile(t, &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Routes: []snapshot.Route{
		{Path: "/public", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "pub", Endpoints: []string{addr(b)}}},
	}}}}))
	raw := func(path string) (int, string) {
		c, err := net.Dial("tcp", addr(front))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]int{
		"/public/../admin":       404, // resolved to /admin: no route
		"/public/%2e%2e/admin":   404,
		"/public/..%2Fadmin":     400,
		"//public/./a":           200,
		"/public/a/../b?x=/../y": 200,
	} {
		code, body := raw(path)
		if code != want {
			t.Errorf("GET %s = %d, want %d (%q)", path, code, want, body)
		}
		if code == 200 {
			if e := decodeEcho(t, body); strings.Contains(e.Path, "/./") || strings.HasPrefix(e.Path, "//") {
				t.Errorf("GET %s forwarded as %q", path, e.Path)
			}
		}
	}
}
