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
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startFastProxy serves p through a FastServer on 127.0.0.1 whose client
// watcher runs every watchEvery.
func startFastProxy(t *testing.T, p *Proxy, watchEvery time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &FastServer{Handler: p, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		Fallback: &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}, watchEvery: watchEvery}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// A client that leaves while its request waits at the upstream cancels
// the exchange (the upstream connection closes, so the backend's request
// context ends) within two watch intervals; a client that stays gets its
// slow answer, however many rounds the watcher made meanwhile.
func TestFastServerClientLeavingCancelsUpstream(t *testing.T) {
	const watchEvery = 100 * time.Millisecond

	ended := make(chan time.Time, 4)
	b := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		wait := 10 * time.Second
		if r.URL.Path == "/slow-but-answers" {
			wait = 600 * time.Millisecond
		}
		select {
		case <-r.Context().Done():
			ended <- time.Now()
		case <-time.After(wait):
			io.WriteString(w, "late answer")
		}
	})
	p, _ := newProxyOpts(t, Options{})
	p.Swap(compile(t, oneRoute("b", addr(b))))
	front := startFastProxy(t, p, watchEvery)

	t.Run("client stays", func(t *testing.T) {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /slow-but-answers HTTP/1.1\r\nHost: app.test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "late answer" {
			t.Errorf("got %d %q, want 200 \"late answer\"", resp.StatusCode, body)
		}
	})

	t.Run("client leaves", func(t *testing.T) {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /hangs HTTP/1.1\r\nHost: app.test\r\n\r\n")
		time.Sleep(300 * time.Millisecond) // the request is at the backend
		left := time.Now()
		c.Close()
		select {
		case at := <-ended:
			if d := at.Sub(left); d > 2*watchEvery+200*time.Millisecond {
				t.Errorf("the upstream exchange ended %v after the client left, want within %v", d, 2*watchEvery)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the upstream exchange still runs 3 s after its client left")
		}
	})

	t.Run("client leaves while another request of the server waits", func(t *testing.T) {
		// Only the leaving client's exchange ends.
		stay, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer stay.Close()
		_ = stay.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(stay, "GET /slow-but-answers HTTP/1.1\r\nHost: app.test\r\n\r\n")
		leave, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(leave, "GET /hangs HTTP/1.1\r\nHost: app.test\r\n\r\n")
		time.Sleep(250 * time.Millisecond)
		leave.Close()
		resp, err := http.ReadResponse(bufio.NewReader(stay), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Errorf("the staying client got %d", resp.StatusCode)
		}
		select {
		case <-ended:
		case <-time.After(3 * time.Second):
			t.Fatal("the leaving client's exchange still runs")
		}
	})
}

// A request whose header block ends exactly where the first read filled
// the buffer, with the next request pipelined behind it: the server must
// read again before it waits (the bytes already arrived, and no new
// readiness will announce them).
func TestFastServerPipelinedAfterAFullRead(t *testing.T) {
	_, addr, counts := startFast(t, echoHandler, 5*time.Second)
	head := "GET /first HTTP/1.1\r\nHost: h\r\nX-Pad: "
	tail := "\r\n\r\n"
	first := head + strings.Repeat("p", fastBufSize-len(head)-len(tail)) + tail
	if len(first) != fastBufSize {
		t.Fatalf("first request is %d bytes, want %d", len(first), fastBufSize)
	}
	got := rawExchange(t, addr, first+"GET /second HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(strings.NewReader(got))
	for _, want := range []string{"/first", "/second"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response for %s: %v (all: %q)", want, err, got)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), want) {
			t.Errorf("response %q, want one for %s", body, want)
		}
	}
	if counts.fast.Load() != 2 {
		t.Errorf("fast path served %d requests, want 2", counts.fast.Load())
	}
}

// A header block that arrives in pieces is assembled across waits.
func TestFastServerHeaderInPieces(t *testing.T) {
	_, addr, counts := startFast(t, echoHandler, 5*time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, piece := range []string{"GET /pie", "ces HTTP/1.1\r\nHo", "st: h\r\n", "\r\n"} {
		io.WriteString(c, piece)
		time.Sleep(30 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "/pieces") || counts.fast.Load() != 1 {
		t.Errorf("got %d %q (fast %d), want 200 for /pieces on the fast path", resp.StatusCode, body, counts.fast.Load())
	}
}
