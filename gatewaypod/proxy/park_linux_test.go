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
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// startParking runs a FastServer with short parking and idle times.
func startParking(t *testing.T, parkAfter, idle time.Duration) (*FastServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(echoHandler)
	s := &FastServer{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle, parkAfter: parkAfter,
		Fallback: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

type keepAliveClient struct {
	c  net.Conn
	br *bufio.Reader
}

func (k *keepAliveClient) get(t *testing.T, path string) {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

func (s *FastServer) parkedCount() int {
	s.parker.mu.Lock()
	defer s.parker.mu.Unlock()
	return len(s.parker.parked)
}

// Idle keep-alive connections give up their goroutine after parkAfter and
// get one back when their next request comes; the requests after that are
// served as before.
func TestFastServerParksIdleConnections(t *testing.T) {
	s, addr := startParking(t, 100*time.Millisecond, 30*time.Second)
	const n = 50
	clients := make([]*keepAliveClient, n)
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = &keepAliveClient{c: c, br: bufio.NewReader(c)}
		clients[i].get(t, "/first")
	}
	busy := runtime.NumGoroutine()
	waitFor(t, "all connections parked", func() bool { return s.parkedCount() == n })
	waitFor(t, "their goroutines gone", func() bool { return runtime.NumGoroutine() <= busy-n })
	for round := 0; round < 3; round++ {
		for _, k := range clients {
			k.get(t, "/again")
		}
	}
	if got := s.parkedCount(); got != 0 {
		t.Errorf("%d connections still parked right after their requests", got)
	}
	// Bytes that arrive just as a connection parks are not lost: requests
	// sent around the parking time all get their answers.
	for i := 0; i < 20; i++ {
		time.Sleep(time.Duration(90+i) * time.Millisecond)
		clients[i].get(t, "/around-parking")
	}
}

// A parked connection is closed at the idle timeout (its client sees the
// end of the connection), and Shutdown closes the parked ones at once.
func TestFastServerParkedIdleTimeoutAndShutdown(t *testing.T) {
	s, addr := startParking(t, 50*time.Millisecond, 1500*time.Millisecond)
	dial := func() *keepAliveClient {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := &keepAliveClient{c: c, br: bufio.NewReader(c)}
		k.get(t, "/")
		return k
	}
	k := dial()
	start := time.Now()
	waitFor(t, "the connection parked", func() bool { return s.parkedCount() == 1 })
	_ = k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := k.br.ReadByte(); err != io.EOF {
		t.Fatalf("read on the idle connection: %v, want EOF at the idle timeout", err)
	}
	if d := time.Since(start); d < 1400*time.Millisecond || d > 3500*time.Millisecond {
		t.Errorf("closed after %v, want the idle timeout (1.5 s, swept once a second)", d)
	}

	k = dial()
	waitFor(t, "the second connection parked", func() bool { return s.parkedCount() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a parked connection: %v", err)
	}
	_ = k.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := k.br.ReadByte(); err != io.EOF {
		t.Errorf("read after Shutdown: %v, want EOF", err)
	}
}
