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
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// cannedBackend is an allocation-free HTTP/1.1 keep-alive server: it reads
// each request header and answers a fixed 100-byte response, so benchmark
// allocations are the proxy's own.
func cannedBackend(b testing.TB) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nDate: Sun, 22 Nov 2026 06:56:41 GMT\r\n\r\n" + strings.Repeat("x", 100))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 8192)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// discardWriter is a reusable http.ResponseWriter.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkServeHTTP measures the proxy's own cost per request: routing,
// balancing, writing the request to a pooled upstream connection, parsing
// the response and relaying its body (net/http's server side excluded).
func BenchmarkServeHTTP(b *testing.B) {
	addr := cannedBackend(b)
	p, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	p.Swap(compile(b, oneRoute("bench", addr)))
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/api/v1/items?x=1", nil)
	req.RequestURI = "/api/v1/items?x=1"
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServeHTTPLimited is BenchmarkServeHTTP on a route with rate and
// connection limits high enough never to refuse (the cost of the checks).
func BenchmarkServeHTTPLimited(b *testing.B) {
	addr := cannedBackend(b)
	p, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	s := oneRoute("bench", addr)
	s.Hosts[0].Routes[0].Limits = &snapshot.Limits{RPS: 1 << 30, RPM: 1 << 30, Connections: 1 << 30}
	p.Swap(compile(b, s))
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/api/v1/items?x=1", nil)
	req.RequestURI = "/api/v1/items?x=1"
	req.RemoteAddr = "192.0.2.1:40000"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServeHTTPAccessLog is BenchmarkServeHTTP with every request
// access-logged (all fields) to a discarding writer.
func BenchmarkServeHTTPAccessLog(b *testing.B) {
	addr := cannedBackend(b)
	p, err := New(Options{AccessLog: AccessLogOptions{SampleRate: 1, Out: io.Discard, Fields: AccessLogFieldNames()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	p.Swap(compile(b, oneRoute("bench", addr)))
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/api/v1/items?x=1", nil)
	req.RequestURI = "/api/v1/items?x=1"
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkNormalizePath: clean paths (the common case) must not allocate.
func BenchmarkNormalizePath(b *testing.B) {
	for name, path := range map[string]string{
		"clean": "/api/v1/items/12345",
		"dirty": "/api//v1/./items/%7euser/../12345",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := normalizePath(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadResponseHeader parses a typical response header.
func BenchmarkReadResponseHeader(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nDate: Sun, 22 Nov 2026 06:56:41 GMT\r\nServer: x\r\n\r\n")
	r := bytes.NewReader(raw)
	pc := &upConn{br: bufio.NewReaderSize(r, 8192), vals: map[string][]string{}}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(raw)
		pc.br.Reset(r)
		clear(h)
		if _, err := readResponseHeader(pc, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibReverseProxy is the same request through
// httputil.ReverseProxy with a tuned Transport and a BufferPool (the
// "stdlib" peer), for comparison of allocations per request.
func BenchmarkStdlibReverseProxy(b *testing.B) {
	addr := cannedBackend(b)
	tr := NewTransport()
	tr.MaxIdleConnsPerHost = 1024
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: addr})
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: newBufferPool(),
	}
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/api/v1/items?x=1", nil)
	req.RequestURI = "/api/v1/items?x=1"
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		rp.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}
