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
	"fmt"
	"net"
	"net/textproto"
	"sync"
	"time"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/rawconn"
)

// Sizes of the per-connection buffers to an endpoint. Response header lines
// longer than the read buffer are assembled up to maxResponseHeaderBytes.
const (
	upstreamReadBuffer     = 8 << 10
	upstreamWriteBuffer    = 4 << 10
	maxResponseHeaderBytes = 64 << 10
)

// upstreamHost is the per-address state the proxy keeps besides the
// balancer's: the idle keep-alive connections.
type upstreamHost struct {
	addr string
	ep   *balancer.Endpoint
	cp   *connPools
	// up, when set, wraps new connections in TLS (HTTPS routes); hosts of
	// one address differ by up, so plain and TLS connections never mix.
	up *upstreamConfig

	mu        sync.Mutex
	idle      []*upConn // LIFO: the most recently used is reused first
	lastSweep time.Time
	// retired: the host was dropped from connPools (its endpoint is gone);
	// connections still in use are closed when they come back.
	retired bool
}

// upConn is one HTTP/1.1 connection to an endpoint. It is used by one
// request at a time, synchronously: no goroutine per connection.
type upConn struct {
	host      *upstreamHost
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	armedAt   time.Time     // when the read deadline was last set
	armedFor  time.Duration // the read timeout it was set for
	// vals remembers the last value slice of each response header, so a
	// header that repeats (Content-Type, Server, Date within a second) costs
	// no allocation; the slices are never modified once published.
	vals map[string][]string
	// keys caches canonical forms of uncommon header names seen here.
	keys map[string]string
	line []byte // assembly buffer for header lines longer than br's buffer
}

func (pc *upConn) close() {
	_ = pc.conn.Close()
	pc.releaseBuffers()
}

// Buffers of connections in use come from pools and go back when the
// connection idles: at 256 busy client connections a buffer pair per
// endpoint connection kept thousands of cold kilobytes touched once per
// request; pooled, the few in use stay in cache.
var (
	upstreamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upstreamReadBuffer) }}
	upstreamWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upstreamWriteBuffer) }}
)

func (pc *upConn) attachBuffers() {
	pc.br = upstreamReaders.Get().(*bufio.Reader)
	pc.br.Reset(pc.conn)
	pc.bw = upstreamWriters.Get().(*bufio.Writer)
	pc.bw.Reset(pc.conn)
}

func (pc *upConn) releaseBuffers() {
	if pc.br != nil {
		pc.br.Reset(nil)
		upstreamReaders.Put(pc.br)
		pc.br = nil
	}
	if pc.bw != nil {
		pc.bw.Reset(nil)
		upstreamWriters.Put(pc.bw)
		pc.bw = nil
	}
}

// connPools owns every upstreamHost, keyed by address.
type connPools struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration

	mu    sync.Mutex
	hosts map[string]*upstreamHost
}

func (cp *connPools) host(addr string, ep *balancer.Endpoint, up *upstreamConfig) *upstreamHost {
	key := addr
	if up != nil {
		key = addr + "\x00" + up.key
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	h := cp.hosts[key]
	if h == nil || h.ep != ep {
		h = &upstreamHost{addr: addr, ep: ep, cp: cp, up: up}
		cp.hosts[key] = h
	}
	return h
}

// get returns an idle connection (reused true) or dials a new one.
// connectTimeout, when not zero, replaces the dialer's timeout; now is the
// time (read by the caller) idle connections are judged at.
func (h *upstreamHost) get(ctx context.Context, connectTimeout time.Duration, now time.Time) (pc *upConn, reused bool, err error) {
	h.mu.Lock()
	for len(h.idle) > 0 {
		pc = h.idle[len(h.idle)-1]
		h.idle[len(h.idle)-1] = nil
		h.idle = h.idle[:len(h.idle)-1]
		if now.Sub(pc.idleSince) < h.cp.idleTimeout {
			h.mu.Unlock()
			pc.attachBuffers()
			return pc, true, nil
		}
		pc.close()
	}
	h.mu.Unlock()
	d := withConnectTimeout(&h.cp.dialer, connectTimeout)
	c, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, false, err
	}
	c = rawconn.Wrap(c) // plain TCP: raw system calls (TLS wraps it)
	if h.up != nil {
		if c, err = h.up.dialTLS(ctx, c, d.Timeout); err != nil {
			return nil, false, err
		}
	}
	pc = &upConn{host: h, conn: c, vals: map[string][]string{}}
	pc.attachBuffers()
	return pc, false, nil
}

// put returns a healthy connection to the idle list (or closes it when the
// list is full) and closes connections idle for longer than idleTimeout.
func (h *upstreamHost) put(pc *upConn) {
	if pc.br.Buffered() > 0 {
		pc.close() // bytes nobody asked for: not a clean keep-alive connection
		return
	}
	pc.releaseBuffers()
	now := time.Now()
	pc.idleSince = now
	h.mu.Lock()
	if h.retired || len(h.idle) >= h.cp.maxIdle {
		h.mu.Unlock()
		pc.close()
		return
	}
	h.idle = append(h.idle, pc)
	var stale []*upConn
	if now.Sub(h.lastSweep) > time.Second {
		h.lastSweep = now
		stale = h.expireLocked(now)
	}
	h.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

// expireLocked removes the connections idle for too long (the oldest are at
// the front) and returns them to be closed outside the lock.
func (h *upstreamHost) expireLocked(now time.Time) []*upConn {
	n := 0
	for n < len(h.idle) && now.Sub(h.idle[n].idleSince) >= h.cp.idleTimeout {
		n++
	}
	if n == 0 {
		return nil
	}
	stale := append([]*upConn(nil), h.idle[:n]...)
	k := copy(h.idle, h.idle[n:])
	clear(h.idle[k:])
	h.idle = h.idle[:k]
	return stale
}

// sweep closes expired idle connections of every host, and every idle
// connection of hosts whose endpoint state is gone from keep.
func (cp *connPools) sweep(keep func(addr string, ep *balancer.Endpoint) bool) {
	now := time.Now()
	cp.mu.Lock()
	var stale []*upConn
	for a, h := range cp.hosts {
		h.mu.Lock()
		if keep != nil && !keep(h.addr, h.ep) {
			stale = append(stale, h.idle...)
			h.idle = nil
			h.retired = true
			delete(cp.hosts, a)
		} else {
			stale = append(stale, h.expireLocked(now)...)
		}
		h.mu.Unlock()
	}
	cp.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

// closeIdle closes every idle connection.
func (cp *connPools) closeIdle() {
	cp.sweep(func(string, *balancer.Endpoint) bool { return false })
}

// alive checks, without blocking, that an idle connection was not closed
// by the endpoint meanwhile (used before sending a body that cannot be
// replayed).
func (pc *upConn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // unsolicited bytes: not a clean keep-alive connection
	}
	_ = pc.conn.SetReadDeadline(time.Now())
	_, err := pc.br.Peek(1)
	_ = pc.conn.SetReadDeadline(time.Time{})
	pc.armedAt = time.Time{} // the request deadline must be set again
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var errHeaderTooLarge = errors.New("response header too large")

// readLine returns the next line without its CRLF; the slice is valid until
// the next read.
func (pc *upConn) readLine() ([]byte, error) {
	line, err := pc.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		pc.line = append(pc.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(pc.line) > maxResponseHeaderBytes {
				return nil, errHeaderTooLarge
			}
			line, err = pc.br.ReadSlice('\n')
			pc.line = append(pc.line, line...)
		}
		line = pc.line
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// canonicalKey returns the canonical form of a header name, allocating only
// for names that are neither common nor seen before on this connection.
func (pc *upConn) canonicalKey(k []byte) (string, error) {
	if s, ok := commonHeaderKeys[string(k)]; ok {
		return s, nil
	}
	if s, ok := pc.keys[string(k)]; ok {
		return s, nil
	}
	for _, c := range k {
		if !isTokenChar(c) {
			return "", fmt.Errorf("invalid header name %q", k)
		}
	}
	s := textproto.CanonicalMIMEHeaderKey(string(k))
	if pc.keys == nil {
		pc.keys = map[string]string{}
	}
	if len(pc.keys) < 256 {
		pc.keys[string(k)] = s
	}
	return s, nil
}

// value returns a one-element slice holding v, shared with the previous
// response on this connection when the value repeats.
func (pc *upConn) value(key string, v []byte) []string {
	if old, ok := pc.vals[key]; ok && old[0] == string(v) {
		return old
	}
	s := []string{string(v)}
	if len(pc.vals) < 64 {
		pc.vals[key] = s
	}
	return s
}

var commonHeaderKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Grpc-Message", "Grpc-Status", "Keep-Alive", "Last-Modified", "Link",
		"Location", "Pragma", "Proxy-Authenticate", "Proxy-Connection", "Referrer-Policy",
		"Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security", "Trailer",
		"Transfer-Encoding", "Upgrade", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
		m[lower(k)] = k
	}
	m["ETag"] = "Etag"
	m["WWW-Authenticate"] = "Www-Authenticate"
	return m
}()

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// withConnectTimeout returns d, or a copy of d whose Timeout is t when t is
// set and differs (a route's proxy-connect-timeout).
func withConnectTimeout(d *net.Dialer, t time.Duration) *net.Dialer {
	if t <= 0 || t == d.Timeout {
		return d
	}
	dd := *d
	dd.Timeout = t
	return &dd
}
