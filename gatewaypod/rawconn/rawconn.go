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

// Package rawconn wraps a TCP connection so its Read and Write issue the
// recv(2) and send(2) system calls without telling the Go scheduler, while
// still waiting for readiness (and honouring deadlines) through the
// runtime's poller.
//
// Why: the socket is non-blocking, so these calls never block; but every
// call the scheduler is told about marks the P as "in a system call", and
// the runtime's monitor thread (sysmon), finding the P in a long loopback
// write twice in a row, hands the P to another thread and keeps itself on
// its shortest (20 µs) sleep. On a proxy pinned to one core that costs a
// context switch every few requests and about a tenth of the CPU. A raw
// call leaves the P running: sysmon backs off to its 10 ms sleep.

package rawconn

import (
	"io"
	"net"
	"syscall"
)

// Conn is a net.Conn whose Read and Write use raw system calls.
type Conn struct {
	net.Conn
	raw syscall.RawConn

	// The RawConn callbacks are method values made once per connection,
	// and their arguments and results travel through these fields, so a
	// call allocates nothing.
	readFn, writeFn, writeAwaitFn func(uintptr) bool
	rbuf, wbuf                    []byte
	rn, wn                        int
	rerr, werr                    error

	// await: the next Write also waits for the reply (AwaitReplyAfterWrite).
	await, awaitSent bool
}

// Wrap returns c wrapped when it is a plain TCP (or Unix) connection whose
// descriptor the poller manages, and c itself otherwise (TLS, pipes, ...).
func Wrap(c net.Conn) net.Conn {
	if _, ok := c.(*Conn); ok {
		return c
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	rc := &Conn{Conn: c, raw: raw}
	rc.readFn = rc.doRead
	rc.writeFn = rc.doWrite
	rc.writeAwaitFn = rc.doWriteAwait
	return rc
}

// Read reads into p once data is available, like net.Conn's Read.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readFn)
	c.rbuf = nil
	if err != nil {
		return 0, c.opError("read", err)
	}
	return c.rn, c.rerr
}

func (c *Conn) doRead(fd uintptr) bool {
	n, err := ReadFD(fd, c.rbuf)
	switch err {
	case nil, io.EOF:
		c.rn, c.rerr = n, err
	case ErrWouldBlock:
		return false // wait for the poller
	default:
		c.rerr = c.opError("read", err)
	}
	return true
}

// Write writes all of p, waiting for the socket to drain when it must.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	sent := 0
	if c.await {
		c.await = false
		n, err := c.writeAwait(p)
		if err != nil || n == len(p) {
			return n, err
		}
		sent, p = n, p[n:] // the socket was full: send the rest plainly
	}
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeFn)
	c.wbuf = nil
	if err != nil && c.werr == nil {
		c.werr = c.opError("write", err)
	}
	return sent + c.wn, c.werr
}

// AwaitReplyAfterWrite makes the next Write, once all its bytes are sent,
// also wait until the connection is readable (the reply arrived, or the
// peer closed or reset it), within the read deadline. The Read that
// follows then finds data at once instead of trying, getting EAGAIN and
// waiting: one system call less per exchange, for protocols where the peer
// speaks only after reading the request (an HTTP/1.1 upstream).
//
// The readiness is armed before the bytes leave, so a reply that arrives
// while the write is still in progress is not missed. A wait that fails
// (deadline, close) is not the Write's error: the bytes were sent, and the
// next Read reports it.
func (c *Conn) AwaitReplyAfterWrite() { c.await = true }

func (c *Conn) writeAwait(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr, c.awaitSent = p, 0, nil, false
	// A failed wait is the next Read's to report; a write never attempted
	// (closed, or the deadline already passed) is retried by Write.
	_ = c.raw.Read(c.writeAwaitFn)
	c.wbuf = nil
	return c.wn, c.werr
}

// doWriteAwait is the RawConn.Read callback of writeAwait: the first call
// writes (the read readiness is already armed), later calls mean readable.
func (c *Conn) doWriteAwait(fd uintptr) bool {
	if c.awaitSent {
		return true
	}
	c.awaitSent = true
	if !c.doWrite(fd) || c.werr != nil {
		return true // the socket is full (Write sends the rest plainly), or failed
	}
	return false // sent: wait for the reply
}

// doWrite writes the rest of c.wbuf; false when the socket is full.
func (c *Conn) doWrite(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, errno := rawWrite(fd, c.wbuf[c.wn:])
		switch errno {
		case 0:
			c.wn += n
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			c.werr = c.opError("write", errno)
			return true
		}
	}
	return true
}

func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		// RawConn names its operations "raw-read"/"raw-write"; callers
		// and logs expect a plain connection's names.
		e := *oe
		e.Op = op
		return &e
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// CloseWrite shuts down the writing side, as *net.TCPConn does (used by
// upgraded connections to pass a half-close on).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn gives access to the descriptor, as the wrapped connection does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// Unwrap returns the wrapped connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Listener wraps every connection ln accepts.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
