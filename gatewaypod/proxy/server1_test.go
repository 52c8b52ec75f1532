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
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// fastTestServer runs a FastServer on 127.0.0.1 with handler h; the
// returned counter counts requests served by the fast path (the handler
// sees a *fastWriter) and the fallback.
type fastCounts struct{ fast, fallback atomic.Int64 }

func startFast(t *testing.T, h http.HandlerFunc, hdrTimeout time.Duration) (*FastServer, string, *fastCounts) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counts := new(fastCounts)
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*fastWriter); ok {
			counts.fast.Add(1)
		} else {
			counts.fallback.Add(1)
		}
		h(w, r)
	})
	fb := &http.Server{Handler: wrapped, ReadHeaderTimeout: hdrTimeout, IdleTimeout: 5 * time.Second,
		MaxHeaderBytes: 16 << 10, Protocols: PlainProtocols(true)}
	s := &FastServer{Handler: wrapped, ReadHeaderTimeout: hdrTimeout, IdleTimeout: 5 * time.Second, Fallback: fb}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String(), counts
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Ua", r.Header.Get("User-Agent"))
	fmt.Fprintf(w, "%s %s %q body=%q", r.Proto, r.RequestURI, r.URL.Query().Get("q"), body)
}

// rawExchange writes raw to a new connection and returns everything the
// server sends until it closes (bounded by a deadline).
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestFastServerKeepAlivePipeliningAndClose(t *testing.T) {
	_, addr, counts := startFast(t, echoHandler, 5*time.Second)
	// Three pipelined requests on one connection; the last asks to close,
	// so the server must answer all three in order and then close.
	got := rawExchange(t, addr, "GET /a?q=1 HTTP/1.1\r\nHost: h1\r\nuser-agent: ua1\r\n\r\n"+
		"HEAD /b HTTP/1.1\r\nHost: h2\r\n\r\n"+
		"GET /c%20d HTTP/1.1\r\nHost: h3\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(strings.NewReader(got))
	for i, want := range []string{`HTTP/1.1 /a?q=1 "1" body=""`, "", `HTTP/1.1 /c%20d "" body=""`} {
		method := http.MethodGet
		if i == 1 {
			method = http.MethodHead
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v (all: %q)", i, err, got)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want || resp.StatusCode != 200 {
			t.Errorf("response %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
		if i == 0 && (resp.Header.Get("X-Host") != "h1" || resp.Header.Get("X-Ua") != "ua1" || resp.ContentLength != int64(len(want))) {
			t.Errorf("response 0 header %v, length %d", resp.Header, resp.ContentLength)
		}
		if i == 2 && !resp.Close {
			t.Errorf("response to Connection: close does not announce the close")
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("bytes after the last response: %q", rest)
	}
	if counts.fast.Load() != 3 || counts.fallback.Load() != 0 {
		t.Errorf("fast %d, fallback %d; want 3 fast", counts.fast.Load(), counts.fallback.Load())
	}
}

func TestFastServerHTTP10ClosesUnlessKeepAlive(t *testing.T) {
	_, addr, _ := startFast(t, echoHandler, 5*time.Second)
	got := rawExchange(t, addr, "GET /x HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n")
	if strings.Count(got, "HTTP/1.1 200") != 1 || !strings.Contains(got, "Connection: close") || strings.Contains(got, "never") {
		t.Errorf("HTTP/1.0 without keep-alive: %q", got)
	}
	got = rawExchange(t, addr, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n")
	if strings.Count(got, "HTTP/1.1 200") != 2 || !strings.Contains(got, "Connection: keep-alive") {
		t.Errorf("HTTP/1.0 keep-alive: %q", got)
	}
}

// Everything the fast path does not take goes to net/http with the bytes
// already read, on the same connection, and gets net/http's answer.
func TestFastServerHandsOverToNetHTTP(t *testing.T) {
	_, addr, counts := startFast(t, echoHandler, 5*time.Second)
	cases := []struct {
		name, raw, want string
		fallback        bool
	}{
		{"body", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", `body="hello"`, true},
		{"chunked body", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", `body="abc"`, true},
		// net/http itself drops the Content-Length (framing.go refuses it
		// in the proxy); the fast path must not take it either way.
		{"CL and TE", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", `body=""`, true},
		{"duplicate CL", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "HTTP/1.1 400", false},
		{"obs-fold", "GET /p HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\nConnection: close\r\n\r\n", "HTTP/1.1 200", true},
		{"no Host", "GET /p HTTP/1.1\r\n\r\n", "HTTP/1.1 400", false},
		{"two Hosts", "GET /p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400", false},
		{"space before colon", "GET /p HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", "HTTP/1.1 400", false},
		{"big header", "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 8<<10) + "\r\nConnection: close\r\n\r\n", `/big`, true},
		{"too big header", "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\n\r\n", "HTTP/1.1 431", false},
		{"keep-alive after fast", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", `/2 "" body="ok"`, true},
		{"expect", "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "HTTP/1.1 100 Continue", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counts.fallback.Load()
			got := rawExchange(t, addr, tc.raw)
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
			if served := counts.fallback.Load() > before; served != tc.fallback {
				t.Errorf("served by the fallback handler: %v, want %v", served, tc.fallback)
			}
		})
	}
}

func TestFastServerH2CPriorKnowledge(t *testing.T) {
	_, addr, counts := startFast(t, echoHandler, 5*time.Second)
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/h2?q=2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != `HTTP/2.0 /h2?q=2 "2" body=""` || counts.fallback.Load() != 1 {
		t.Errorf("h2c: proto %d, body %q, fallback %d", resp.ProtoMajor, body, counts.fallback.Load())
	}
}

func TestFastServerResponseFraming(t *testing.T) {
	_, addr, _ := startFast(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream": // flushed, unknown length: chunked
			w.Write([]byte("part1"))
			http.NewResponseController(w).Flush()
			w.Write([]byte("part2"))
		case "/big": // more than is held back: chunked
			w.Write([]byte(strings.Repeat("x", 3000)))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/short": // declares more than it sends: the connection must end
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("abc"))
		case "/hint":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Write([]byte("<html>final</html>"))
		case "/panic":
			panic(http.ErrAbortHandler)
		}
	}, 5*time.Second)
	for _, tc := range []struct{ path, want string }{
		{"/stream", "Transfer-Encoding: chunked\r\n"},
		{"/stream", "5\r\npart1\r\n5\r\npart2\r\n0\r\n\r\n"},
		{"/big", "Transfer-Encoding: chunked\r\n"},
		{"/empty", "HTTP/1.1 204 No Content\r\n"},
		{"/hint", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"},
		{"/hint", "Content-Type: text/html; charset=utf-8\r\n"},
	} {
		got := rawExchange(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q does not contain %q", tc.path, got, tc.want)
		}
	}
	// A short body or a panic ends the connection: the next pipelined
	// request is not answered.
	for _, p := range []string{"/short", "/panic"} {
		got := rawExchange(t, addr, "GET "+p+" HTTP/1.1\r\nHost: h\r\n\r\nGET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
		if strings.Contains(got, "204") {
			t.Errorf("%s: the connection served another request: %q", p, got)
		}
	}
}

func TestFastServerHeaderTimeout(t *testing.T) {
	_, addr, _ := startFast(t, echoHandler, 300*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// One fast request, then a second one whose header dribbles in: the
	// header timeout is not extended by each line.
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	start := time.Now()
	io.WriteString(c, "GET /2 HTTP/1.1\r\nHost: h\r\n")
	for time.Since(start) < 3*time.Second {
		if _, err := io.WriteString(c, "X-Dribble: 1\r\n"); err != nil {
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if b, err := br.ReadByte(); err == nil {
			t.Fatalf("slow header: the server answered (%q)", b)
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			break // closed
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dribbling client cut off after %v, want about the 300ms header timeout", d)
	}
}

func TestFastServerShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s, addr, _ := startFast(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Write([]byte("done"))
	}, 5*time.Second)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
	ir := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ir, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle conn's first request: %v", err)
	} else if b, _ := io.ReadAll(resp.Body); string(b) != "done" {
		t.Fatalf("idle conn's first response: %q", b)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_ = busy.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// The idle connection is closed without an answer.
	_ = idle.SetDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(ir); len(b) != 0 {
		t.Errorf("idle connection got %q during shutdown", b)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "done" || !resp.Close {
		t.Errorf("in-flight request: %q, close %v; want done and a close", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

// FuzzFastParse checks that the fast path takes only what net/http takes,
// and reads it the same way: for any input the fast parser accepts,
// http.ReadRequest (plus the checks net/http's server adds) must accept it
// with the same method, target, URL, Host, header, body and close.
func FuzzFastParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?b=c&d HTTP/1.1\r\nHost: h:80\r\nuser-agent: x\r\nAccept: */*\r\n\r\n",
		"GET /a%20b/[c] HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n",
		"GET /a/[b]!*(c)?[q] HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET //x/../y HTTP/1.1\r\nHost: h\r\nX: a\tb \r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end := bytes.Index(data, crlfcrlf)
		if end < 0 || end+4 > fastBufSize {
			return
		}
		end += 4
		fc := &fastConn{br: bufio.NewReaderSize(bytes.NewReader(data), fastBufSize)}
		fc.tmpl.Header = http.Header{}
		if _, err := fc.br.Peek(end); err != nil {
			t.Fatal(err)
		}
		if !fc.parse(end) {
			return
		}
		got := &fc.req
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:end])))
		if err != nil {
			t.Fatalf("fast path took %q; net/http refuses it: %v", data[:end], err)
		}
		if std.ProtoAtLeast(1, 1) && !bytes.Contains(bytes.ToLower(data[:end]), []byte("\nhost:")) {
			t.Fatalf("fast path took %q without Host", data[:end])
		}
		for k, vs := range std.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("fast path took header name %q", k)
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("fast path took header value %q", v)
				}
			}
		}
		if std.Method != got.Method || std.RequestURI != got.RequestURI || *std.URL != *got.URL ||
			std.Host != got.Host || std.Close != got.Close || std.ProtoMinor != got.ProtoMinor ||
			std.ContentLength != 0 || len(std.TransferEncoding) != 0 || !reflect.DeepEqual(std.Header, got.Header) {
			t.Fatalf("%q:\nnet/http  %s %s %+v host %q close %v cl %d te %v %v\nfast path %s %s %+v host %q close %v %v",
				data[:end], std.Method, std.RequestURI, *std.URL, std.Host, std.Close, std.ContentLength, std.TransferEncoding, std.Header,
				got.Method, got.RequestURI, *got.URL, got.Host, got.Close, got.Header)
		}
	})
}

// What a handler changes in a request does not carry over to the next
// request of the connection (the request and its Header map are reused).
func TestFastServerRequestReuseStartsClean(t *testing.T) {
	_, addr, _ := startFast(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%v", r.RemoteAddr[:4], r.Header.Get("X-Set"), r.URL.Path, r.Header["X-Only-First"])
		r.RemoteAddr = "changed"
		r.Header.Set("X-Set", "leaked")
		r.URL.Path = "/leaked"
	}, 5*time.Second)
	got := rawExchange(t, addr, "GET /1 HTTP/1.1\r\nHost: h\r\nX-Only-First: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !strings.Contains(got, "127.||/1|[a]") || !strings.Contains(got, "127.||/2|[]") {
		t.Errorf("responses %q: want each request as sent", got)
	}
}
