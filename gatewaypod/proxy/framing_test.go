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
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestChunkedRequestClosesConnection: after a chunked HTTP/1.1 request
// (here one that also carries a Content-Length, which net/http drops) the
// connection is closed, so the bytes after the body are never served as a
// request; a request framed by Content-Length keeps the connection.
func TestChunkedRequestClosesConnection(t *testing.T) {
	var seen atomic.Int32
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
	p, front := newProxyOpts(t, Options{})
	p.Swap(compile(t, oneRoute("b", addr(b))))
	next := "GET /second HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := map[string]struct {
		first     string
		wantClose bool
	}{
		"chunked with Content-Length": {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		"chunked":                     {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", true},
		"Content-Length":              {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seen.Store(0)
			c, err := net.Dial("tcp", addr(front))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.first+next); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.Close != tc.wantClose { // resp.Close: "Connection: close" was sent
				t.Fatalf("Connection: close sent %v, want %v", resp.Close, tc.wantClose)
			}
			_, err = http.ReadResponse(br, nil)
			if tc.wantClose {
				if err == nil || !strings.Contains(err.Error(), "EOF") {
					t.Fatalf("a second response after a chunked request (err %v)", err)
				}
				if n := seen.Load(); n != 1 {
					t.Fatalf("backend saw %d requests, want 1", n)
				}
			} else if err != nil || seen.Load() != 2 {
				t.Fatalf("pipelined request after a Content-Length body: err %v, backend saw %d", err, seen.Load())
			}
		})
	}
}
