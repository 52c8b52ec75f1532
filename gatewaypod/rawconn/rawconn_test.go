//go:build linux

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

package rawconn

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the plain server side of a
// loopback TCP connection.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	rc, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap(%T) did not wrap", c)
	}
	t.Cleanup(func() { rc.Close(); s.Close() })
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	return rc, s
}

func TestWrapOnlyPlainSockets(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if _, ok := Wrap(c1).(*Conn); ok {
		t.Error("a pipe was wrapped")
	}
	tc := tls.Client(c1, &tls.Config{})
	if Wrap(tc) != net.Conn(tc) {
		t.Error("a TLS connection was wrapped")
	}
	rc, _ := pair(t)
	if Wrap(rc) != net.Conn(rc) {
		t.Error("a wrapped connection was wrapped again")
	}
}

// Bytes go both ways intact, including a write far larger than the socket
// buffers while the peer reads slowly (the write waits for room).
func TestReadWriteLarge(t *testing.T) {
	rc, s := pair(t)
	big := make([]byte, 8<<20)
	rand.Read(big)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the send buffer fill
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(big))))
		got <- b
	}()
	n, err := rc.Write(big)
	if err != nil || n != len(big) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer read %d bytes, not the %d written", len(b), len(big))
	}
	go s.Write(big[:100000])
	back := make([]byte, 100000)
	if _, err := io.ReadFull(rc, back); err != nil || !bytes.Equal(back, big[:100000]) {
		t.Fatalf("ReadFull: %v", err)
	}
}

// Deadlines, EOF and a closed connection report the errors a plain
// connection reports, with the plain operation names.
func TestErrors(t *testing.T) {
	rc, s := pair(t)
	_ = rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := rc.Read(make([]byte, 10))
	var ne net.Error
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("read past the deadline: %v, want a timeout OpError \"read\"", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("the deadline fired after %v", d)
	}
	_ = rc.SetReadDeadline(time.Time{})

	s.Close()
	if _, err := rc.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("read after the peer closed: %v, want io.EOF", err)
	}
	rc.Close()
	if _, err := rc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Errorf("write on a closed connection: %v, want net.ErrClosed as OpError \"write\"", err)
	}
	if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a closed connection: %v, want net.ErrClosed", err)
	}
}

// AwaitReplyAfterWrite: the Write returns once the reply is readable, even
// when the peer answers before the write call has returned; a peer that
// closes instead is reported by the next Read; so is the read deadline.
func TestAwaitReplyAfterWrite(t *testing.T) {
	t.Run("reply", func(t *testing.T) {
		rc, s := pair(t)
		_ = rc.SetReadDeadline(time.Now().Add(10 * time.Second))
		go func() {
			b := make([]byte, 4)
			if _, err := io.ReadFull(s, b); err == nil {
				s.Write([]byte("pong"))
			}
		}()
		for i := 0; i < 200; i++ { // the peer races the end of the write
			rc.AwaitReplyAfterWrite()
			if n, err := rc.Write([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			b := make([]byte, 4)
			if _, err := io.ReadFull(rc, b); err != nil || string(b) != "pong" {
				t.Fatalf("round %d: read %q, %v", i, b, err)
			}
			go func() {
				b := make([]byte, 4)
				if _, err := io.ReadFull(s, b); err == nil {
					s.Write([]byte("pong"))
				}
			}()
		}
	})
	t.Run("peer closes", func(t *testing.T) {
		rc, s := pair(t)
		go func() {
			b := make([]byte, 4)
			io.ReadFull(s, b)
			s.Close()
		}()
		rc.AwaitReplyAfterWrite()
		if _, err := rc.Write([]byte("ping")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, err := rc.Read(make([]byte, 4)); err != io.EOF {
			t.Errorf("Read: %v, want io.EOF", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		rc, _ := pair(t)
		_ = rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		rc.AwaitReplyAfterWrite()
		start := time.Now()
		if n, err := rc.Write([]byte("ping")); n != 4 || err != nil {
			t.Fatalf("Write: %d, %v (the bytes were sent)", n, err)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("Write returned after %v, before the deadline, with no reply", d)
		}
		if _, err := rc.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read: %v, want the deadline", err)
		}
	})
	t.Run("a write larger than the socket buffers", func(t *testing.T) {
		rc, s := pair(t)
		big := make([]byte, 8<<20)
		go func() {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.ReadFull(s, make([]byte, len(big))); err == nil {
				s.Write([]byte("done"))
			}
		}()
		rc.AwaitReplyAfterWrite()
		if n, err := rc.Write(big); n != len(big) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(rc, b); err != nil || string(b) != "done" {
			t.Fatalf("Read: %q, %v", b, err)
		}
	})
}
