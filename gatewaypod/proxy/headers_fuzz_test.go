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

// Fuzz targets for the bytes around the proxy: request header blocks from
// clients, response header blocks from endpoints, and TLS server names.
// The request and response targets run the real path (net/http server ->
// Proxy -> own HTTP/1.1 forwarder -> a raw TCP endpoint) on 127.0.0.1 and
// check what crosses each hop on the wire.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// fuzzFront serves p on 127.0.0.1 and records a handler panic other than
// http.ErrAbortHandler (net/http would recover it and hide it).
func fuzzFront(tb testing.TB, p *Proxy) (string, *atomic.Value) {
	tb.Helper()
	var panicked atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panicked.Store(fmt.Sprint(v))
				}
				panic(v)
			}
		}()
		p.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	// The client side is the gateway's: the fast HTTP/1.1 path, net/http
	// for what it hands over.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
	fast := &FastServer{Handler: h, ReadHeaderTimeout: srv.ReadHeaderTimeout, Fallback: srv}
	go func() { _ = fast.Serve(ln) }()
	tb.Cleanup(func() { fast.Close() })
	return ln.Addr().String(), &panicked
}

// rawEndpoint is a TCP endpoint on 127.0.0.1: serve runs on every
// connection. stop closes the listener and every connection, and waits.
func rawEndpoint(tb testing.TB, serve func(net.Conn)) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			noLinger(c)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			}()
		}
	}()
	var once sync.Once
	return ln.Addr().String(), func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
}

// recordingReader keeps every byte read through it.
type recordingReader struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

// upstreamRequest is one request as the endpoint received it.
type upstreamRequest struct {
	raw []byte // request line and header block, as sent
	err error  // the request did not parse, or bytes followed it unasked
	// bodyErr: the body ended early (the proxy streams bodies, so a client
	// that stops sending leaves the endpoint with a short one).
	bodyErr error
	header  http.Header
}

// exchange writes raw to the front and reads the responses. When raw is
// exactly n complete requests it reads n responses (or until the server
// closes); otherwise it half-closes after writing, so the server sees the
// end of the bytes, and reads until it closes. A deadline bounds both.
// noLinger makes Close reset the connection instead of leaving it in
// TIME_WAIT: a fuzz run opens thousands of connections per second, and
// their TIME_WAIT entries would exhaust the ephemeral ports that later tests
// (envtest picks its ports with bind(0)) depend on.
func noLinger(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

func exchange(tb testing.TB, front string, raw []byte, n int, complete bool) (codes []int, err error) {
	c, err := net.Dial("tcp", front)
	if err != nil {
		tb.Fatal(err)
	}
	noLinger(c)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(raw)
	if !complete || n == 0 {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(c)
	for !complete || len(codes) < n {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return codes, nil // closed by the server
			}
			return codes, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes, err
		}
		codes = append(codes, resp.StatusCode)
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return codes, nil // cut: the proxy aborted a broken response
		}
	}
	return codes, nil
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// clientRequests parses raw the way net/http's server does, as far as it
// can, and returns the requests found and whether they are all of raw.
func clientRequests(raw []byte) ([]*http.Request, bool) {
	var out []*http.Request
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	for len(out) < 100 {
		if r.Len() == 0 && br.Buffered() == 0 {
			return out, true
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return out, false
		}
		out = append(out, req)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return out, false
		}
	}
	return out, false
}

// hopByHop are never forwarded upstream, whatever the client sends.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
	"Upgrade", "Trailer", "Expect"}

// setByProxy are the headers the proxy writes itself.
var setByProxy = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true,
	hdrXForwardedFor: true, hdrXRealIP: true, hdrXForwardedHost: true, hdrXForwardedProto: true,
	hdrXForwardedPort: true, hdrXRequestID: true, "Te": true}

// checkUpstreamRequest asserts the framing and hop-by-hop invariants of one
// forwarded request; conn are the Connection tokens of the client requests.
func checkUpstreamRequest(t *testing.T, u upstreamRequest, conn map[string]bool) {
	t.Helper()
	if u.err != nil {
		t.Fatalf("the endpoint received a request it cannot parse, or smuggled bytes: %v\n%q", u.err, u.raw)
	}
	head, _, _ := bytes.Cut(u.raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")[1:]
	count, te := map[string]int{}, ""
	for _, l := range lines {
		if l == "" || l[0] == ' ' || l[0] == '\t' || strings.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("forwarded a folded, empty or split header line %q\n%q", l, u.raw)
		}
		name, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("forwarded header line without a colon %q", l)
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		count[k]++
		if k == "Transfer-Encoding" {
			te = strings.TrimSpace(v)
		}
		if k == "Te" && strings.TrimSpace(v) != "trailers" {
			t.Fatalf("forwarded Te: %q", v)
		}
	}
	upgrade := count["Upgrade"] == 1 && strings.EqualFold(u.header.Get("Connection"), "Upgrade")
	for _, h := range hopByHop {
		if count[h] > 0 && !(upgrade && (h == "Connection" || h == "Upgrade")) {
			t.Fatalf("hop-by-hop header %s forwarded\n%q", h, u.raw)
		}
	}
	if count["Content-Length"] > 1 || count["Transfer-Encoding"] > 1 || count["Content-Length"]+count["Transfer-Encoding"] > 1 {
		t.Fatalf("more than one framing header forwarded\n%q", u.raw)
	}
	if count["Transfer-Encoding"] == 1 && te != "chunked" {
		t.Fatalf("forwarded Transfer-Encoding %q", te)
	}
	for _, k := range []string{"Host", hdrXForwardedFor, hdrXRealIP} {
		if count[k] != 1 {
			t.Fatalf("%s sent %d times\n%q", k, count[k], u.raw)
		}
	}
	// The peer (127.0.0.1) is not a trusted proxy: what it claims is replaced.
	if v := u.header.Get(hdrXForwardedFor); v != "127.0.0.1" || u.header.Get(hdrXRealIP) != "127.0.0.1" || count[hdrForwarded] > 0 {
		t.Fatalf("client-chosen forwarding headers reached the endpoint\n%q", u.raw)
	}
	for k := range count {
		if conn[k] && !setByProxy[k] && !upgrade {
			t.Fatalf("header %s, listed in the client's Connection header, was forwarded\n%q", k, u.raw)
		}
	}
}

// FuzzRequestHeaders sends arbitrary bytes as one or more requests to a
// real server in front of the Proxy, whose one route leads to a raw
// endpoint. It checks: no handler panic; every response parses; at most one
// upstream request per request the client bytes hold; each upstream request
// parses, carries no bytes after it (no smuggling), has exactly one framing
// decision, no hop-by-hop header and no header the client's Connection
// header named, and the proxy's own forwarding headers.
func FuzzRequestHeaders(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: x\r\nX: \x7f\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add([]byte(s))
	}
	p, err := New(Options{ReadTimeout: 2 * time.Second, Retries: -1, PassiveHealth: nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.Close)
	front, panicked := fuzzFront(f, p)
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := make(chan upstreamRequest, 128)
		addr, stop := rawEndpoint(t, func(c net.Conn) {
			rec := &recordingReader{r: c}
			br := bufio.NewReader(rec)
			for {
				rec.buf.Reset()
				req, err := http.ReadRequest(br)
				if err != nil {
					if rec.buf.Len() > 0 {
						got <- upstreamRequest{raw: bytes.Clone(rec.buf.Bytes()), err: err}
					}
					return
				}
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					got <- upstreamRequest{raw: bytes.Clone(rec.buf.Bytes()), header: req.Header, bodyErr: err}
					return
				}
				u := upstreamRequest{raw: bytes.Clone(rec.buf.Bytes()), header: req.Header}
				if br.Buffered() > 0 {
					u.err = fmt.Errorf("%d bytes after the request", br.Buffered())
				}
				got <- u
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
			}
		})
		defer stop()
		p.Swap(compile(t, oneRoute("fuzz", addr)))
		reqs, complete := clientRequests(raw)
		codes, err := exchange(t, front, raw, len(reqs), complete)
		if v := panicked.Load(); v != nil {
			t.Fatalf("handler panic: %v", v)
		}
		if err != nil {
			t.Fatalf("response does not parse: %v (codes so far %v)", err, codes)
		}
		stop()
		close(got)
		var ups []upstreamRequest
		for u := range got {
			ups = append(ups, u)
		}
		if len(ups) > len(reqs) {
			t.Fatalf("%d requests reached the endpoint from %d client requests", len(ups), len(reqs))
		}
		conn := map[string]bool{}
		for _, r := range reqs {
			for _, v := range r.Header["Connection"] {
				for _, tok := range strings.Split(v, ",") {
					conn[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(tok))] = true
				}
			}
		}
		for _, u := range ups {
			if u.bodyErr != nil && complete {
				t.Fatalf("the endpoint got a short body although the client sent it whole: %v\n%q", u.bodyErr, u.raw)
			}
			checkUpstreamRequest(t, u, conn)
		}
	})
}

// FuzzResponseHeaders lets a raw endpoint answer with arbitrary bytes and
// checks what the client gets: no handler panic; a response that parses;
// no hop-by-hop header of the endpoint, no header the endpoint's Connection
// header named; one framing (Content-Length or chunked, not both).
func FuzzResponseHeaders(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
		"HTTP/1.1 200 OK\r\nConnection: X-Internal, close\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Authenticate: x\r\nTrailer: X\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody until close",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rInjected: 1\r\n\r\n",
		"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
		"garbage",
		"",
	} {
		f.Add([]byte(s))
	}
	p, err := New(Options{ReadTimeout: 2 * time.Second, Retries: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.Close)
	front, panicked := fuzzFront(f, p)
	f.Fuzz(func(t *testing.T, answer []byte) {
		addr, stop := rawEndpoint(t, func(c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = c.Write(answer)
		})
		defer stop()
		p.Swap(compile(t, oneRoute("fuzz", addr)))
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		noLinger(c)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
		raw, _ := io.ReadAll(c) // until the server closes, or the deadline
		if v := panicked.Load(); v != nil {
			t.Fatalf("handler panic: %v", v)
		}
		if len(raw) == 0 {
			return // cut before the header was flushed: a broken body aborts the response
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("the client got no parsable response: %v\n%q", err, raw)
		}
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		count := map[string]int{}
		for _, l := range strings.Split(string(head), "\r\n")[1:] {
			name, _, _ := strings.Cut(l, ":")
			count[textproto.CanonicalMIMEHeaderKey(name)]++
		}
		for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade", "Proxy-Authenticate", "Trailer"} {
			if count[h] > 0 {
				t.Fatalf("hop-by-hop %s relayed to the client\n%q", h, raw)
			}
		}
		if v := resp.Header.Values("Connection"); len(v) > 1 || len(v) == 1 && v[0] != "close" {
			t.Fatalf("Connection %q relayed to the client", v)
		}
		if count["Content-Length"]+count["Transfer-Encoding"] > 1 {
			t.Fatalf("more than one framing header to the client\n%q", raw)
		}
		// Headers the endpoint listed in its Connection header stay on that hop.
		if up, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil); err == nil {
			own := map[string]bool{"Date": true, "Content-Length": true, "Transfer-Encoding": true, "Content-Type": true,
				"Connection": true, "Server": true}
			for _, v := range up.Header["Connection"] {
				for _, tok := range strings.Split(v, ",") {
					k := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(tok))
					if count[k] > 0 && !own[k] && resp.Header.Get("Server") != ServerHeader {
						t.Fatalf("header %s, listed in the endpoint's Connection header, relayed\n%q", k, raw)
					}
				}
			}
		}
	})
}

// FuzzServerName runs arbitrary TLS server names through the CertStore the
// HTTPS listener uses (router SNI lookup, then the loaded certificates) and
// checks: no panic, always a certificate (there is a default), ASCII case
// and one trailing dot never change it, and a host's certificate is served
// only for a name that spells that host (the wildcard's for one label more).
func FuzzServerName(f *testing.F) {
	app := testCert{secret: "ns/app", hosts: []string{"app.test"}}
	app.crt, app.key = selfSigned(f, "app", "app.test")
	wild := testCert{secret: "ns/wild", hosts: []string{"*.wild.test"}}
	wild.crt, wild.key = selfSigned(f, "wild", "*.wild.test")
	def := testCert{secret: "ns/default"}
	def.crt, def.key = selfSigned(f, "default")
	s := oneRoute("b", "127.0.0.1:1")
	s.Certificates = []snapshot.Certificate{def.pinned(), app.pinned(), wild.pinned()}
	s.Certificates[0].Default = true
	rt := compile(f, s)
	store, err := NewCertStore(rt.Certificate, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	store.SetCertificates(s.Certificates)
	store.SetData(secretData(app, wild, def))
	for _, n := range []string{"", "app.test", "APP.test.", "x.wild.test", "a.b.wild.test", "wild.test", ".wild.test",
		"app.test:443", "[::1]", "127.0.0.1", "app.test\x00", "xn--app.test", "*.wild.test"} {
		f.Add(n)
	}
	cn := func(name string) string {
		c, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || c == nil {
			f.Fatalf("GetCertificate(%q): %v", name, err)
		}
		return c.Leaf.Subject.CommonName
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := cn(name)
		for _, v := range []string{asciiUpperSNI(name), name + "."} {
			if v == name+"." && (strings.HasSuffix(name, ".") || strings.Contains(name, ":")) {
				continue
			}
			if c := cn(v); c != got {
				t.Fatalf("server name %q gets %q but %q gets %q", name, got, v, c)
			}
		}
		lower := strings.ToLower(name)
		switch got {
		case "app":
			if !strings.Contains(lower, "app.test") {
				t.Fatalf("server name %q got app.test's certificate", name)
			}
		case "wild":
			i := strings.Index(lower, ".wild.test")
			if i <= 0 || strings.Contains(lower[:i], ".") {
				t.Fatalf("server name %q got *.wild.test's certificate", name)
			}
		}
	})
}

func asciiUpperSNI(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
