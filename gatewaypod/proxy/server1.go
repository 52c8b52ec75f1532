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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portico-dev/portico/gatewaypod/rawconn"
)

// FastServer serves the plain-text listener with an HTTP/1.1 loop of its own
// for the common request: HTTP/1.0 or 1.1, origin-form target, a well-formed
// header block that fits in one 4 KiB buffer, and no request body (no
// Content-Length other than 0, no Transfer-Encoding, no Expect, no Upgrade).
// The request, its Header map, the URL and the ResponseWriter are reused
// for every request of a connection, so such a request costs no allocation
// of the server's own.
//
// Everything else - a request with a body, an upgrade, h2c prior knowledge,
// an oversized, malformed or merely unusual header - hands the connection,
// with the bytes read so far, to Fallback (a net/http Server) for the rest
// of its life, so every framing defence and limit of net/http applies to it
// exactly as before: the fast path only ever accepts a strict subset of
// what net/http accepts.
//
// A client that goes away while its request is at the upstream is noticed
// by a watcher rather than by a read per request (net/http's background
// read costs a goroutine wake-up and a system call per request): every
// clientWatchInterval it peeks at the sockets of requests that were
// already in flight at its previous round; a closed or reset one cancels
// the request (the upstream exchange ends, 499). So a request longer than
// one interval learns of its client leaving within two.
type FastServer struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// Fallback serves the connections the fast path hands over; its
	// Handler, timeouts and MaxHeaderBytes should match the fields above.
	Fallback *http.Server

	mu         sync.Mutex
	ln         net.Listener
	conns      map[*fastConn]struct{}
	closing    atomic.Bool
	handoff    *handoffListener
	wg         sync.WaitGroup
	fallback   chan error
	stopWatch  chan struct{}
	watchEvery time.Duration
	// parker keeps connections idle for parkAfter without a goroutine
	// (nil where unsupported); parkAfter, when set, replaces
	// idleParkAfter in tests.
	parker    *idleParker
	parkAfter time.Duration
}

// idleParkAfter is how long a keep-alive connection waits for its next
// request with a goroutine of its own before it is parked.
const idleParkAfter = 2 * time.Second

// idleWait is the wait for the next request on a keep-alive connection
// before anything happens: the idle timeout, or the parking time when that
// comes first.
func (s *FastServer) idleWait() time.Duration {
	wait := s.idleLimit()
	if s.parker != nil {
		park := s.parkAfter
		if park <= 0 {
			park = idleParkAfter
		}
		if wait <= 0 || park < wait {
			wait = park
		}
	}
	return wait
}

// idleLimit is how long a keep-alive connection may wait for its next
// request (0: forever).
func (s *FastServer) idleLimit() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

// clientWatchInterval is the period of the watcher of in-flight requests'
// clients (a FastServer's watchEvery, when set, replaces it in tests).
const clientWatchInterval = 250 * time.Millisecond

// fastBufSize bounds the header block the fast path parses; a larger one
// goes to net/http, which enforces MaxHeaderBytes (431).
const fastBufSize = 4 << 10

// Serve accepts connections on ln until Shutdown; it returns
// http.ErrServerClosed after Shutdown, like http.Server.Serve.
func (s *FastServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.conns = make(map[*fastConn]struct{})
	s.handoff = &handoffListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	s.fallback = make(chan error, 1)
	s.stopWatch = make(chan struct{})
	s.mu.Unlock()
	go func() { s.fallback <- s.Fallback.Serve(s.handoff) }()
	go s.watchClients(s.stopWatch)
	if p, err := newIdleParker(s); err == nil {
		s.mu.Lock()
		s.parker = p
		s.mu.Unlock()
		go p.run()
	} else if fastPathSupported {
		s.logf("portico: idle connections keep their goroutine: %v", err)
	}
	connCtx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		fc := &fastConn{srv: s, conn: c}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			c.Close()
			return http.ErrServerClosed
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go fc.serve(connCtx)
	}
}

// stopWatching ends watchClients; s.mu is held.
func (s *FastServer) stopWatching() {
	if s.stopWatch != nil {
		close(s.stopWatch)
		s.stopWatch = nil
	}
}

// watchClients checks, every clientWatchInterval, the clients of the
// requests that were already in flight at the previous round, and cancels
// those whose client closed or reset the connection.
func (s *FastServer) watchClients(stop <-chan struct{}) {
	every := s.watchEvery
	if every <= 0 {
		every = clientWatchInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var long []*fastConn
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		long = long[:0]
		s.mu.Lock()
		for fc := range s.conns {
			seq := fc.busySeq.Load()
			if seq != 0 && seq == fc.watchSeen {
				long = append(long, fc)
			}
			fc.watchSeen = seq
		}
		s.mu.Unlock()
		for _, fc := range long {
			if fc.clientLeft() {
				fc.abort()
			}
		}
		clear(long)
	}
}

// isTemporary reports accept errors worth retrying, as net/http does
// (EMFILE and the like are Temporary).
func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	var t temporary
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// flight finish (their connections close after the response), and shuts
// the fallback server down; like http.Server.Shutdown it returns ctx's
// error when ctx ends first.
func (s *FastServer) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	s.stopWatching()
	var lerr error
	if s.ln != nil {
		lerr = s.ln.Close()
	}
	for fc := range s.conns {
		fc.wakeIfIdle()
	}
	h, pk := s.handoff, s.parker
	s.mu.Unlock()
	if pk != nil {
		pk.close() // and the connections parked there
	}
	if h != nil {
		h.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var ferr error
	if s.Fallback != nil && h != nil {
		ferr = s.Fallback.Shutdown(ctx)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if ferr != nil {
		return ferr
	}
	if lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		return lerr
	}
	return nil
}

// Close closes the listener and every connection at once, and the fallback.
func (s *FastServer) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	s.stopWatching()
	if s.ln != nil {
		s.ln.Close()
	}
	for fc := range s.conns {
		fc.conn.Close()
	}
	h, pk := s.handoff, s.parker
	s.mu.Unlock()
	if pk != nil {
		pk.close()
	}
	if h != nil {
		h.Close()
	}
	if s.Fallback != nil {
		return s.Fallback.Close()
	}
	return nil
}

// handoffListener feeds the connections the fast path gives up to the
// fallback http.Server.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to the fallback server; false when it is shutting down.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// replayConn is a connection handed over with bytes already read from it.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// fastConn is one client connection of the fast path.
type fastConn struct {
	srv  *FastServer
	conn net.Conn

	mu   sync.Mutex
	idle bool // waiting for the next request: Shutdown may close it
	// upstream is the connection the current request waits on (set by the
	// forwarder through upstreamWatcher); aborted: the client left.
	upstream net.Conn
	aborted  bool
	cancel   context.CancelFunc // ends the requests' context

	// busySeq is the number of the request being handled, 0 between
	// requests; watchSeen is what watchClients saw at its last round
	// (touched by it only, under srv.mu).
	busySeq   atomic.Uint64
	seq       uint64
	watchSeen uint64

	raw         syscall.RawConn
	fdr         fdReader
	exit        int // how onReadable left the connection
	idleSince   time.Time
	parkedFD    int32 // the socket, while parked
	headerArmed bool  // the header timeout runs for the current request
	// values holds the header values of the previous request by name: a
	// client repeats them, and a repeated one costs no allocation.
	values   map[string]string
	armedAt  time.Time
	armedFor time.Duration

	br   *bufio.Reader // nil while idle
	bw   *bufio.Writer // only while a response is written
	req  http.Request
	tmpl http.Request // context, RemoteAddr and the Header map of every request
	url  url.URL
	w    fastWriter
}

var (
	fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastBufSize) }}
	fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// setIdle records whether the connection waits between requests; it
// returns false when the server is closing (the connection should end).
func (fc *fastConn) setIdle(idle bool) bool {
	fc.mu.Lock()
	fc.idle = idle
	fc.mu.Unlock()
	return !fc.srv.closing.Load()
}

func (fc *fastConn) wakeIfIdle() {
	fc.mu.Lock()
	if fc.idle {
		_ = fc.conn.SetReadDeadline(time.Now())
	}
	fc.mu.Unlock()
}

func (fc *fastConn) serve(base context.Context) {
	s := fc.srv
	ctx := context.WithValue(base, http.LocalAddrContextKey, fc.conn.LocalAddr())
	// One cancellable context for the connection's requests: watchClients
	// cancels it when the client leaves, which also ends the connection.
	ctx, fc.cancel = context.WithCancel(context.WithValue(ctx, upstreamWatchKey{}, upstreamWatcher(fc)))
	if sc, ok := fc.conn.(syscall.Conn); ok && fastPathSupported {
		fc.raw, _ = sc.SyscallConn()
	}
	if fc.raw == nil {
		// No descriptor to drive: net/http serves the connection.
		fc.finish(s.handoff.give(fc.conn))
		return
	}
	fc.values = make(map[string]string, 8)
	fc.tmpl = *(&http.Request{}).WithContext(ctx)
	fc.tmpl.Header = make(http.Header, 8)
	fc.tmpl.RemoteAddr = fc.conn.RemoteAddr().String()
	fc.w.conn = fc
	fc.w.hdr = make(http.Header, 8)

	// The header timeout counts from the connection's start.
	fc.headerArmed = true
	fc.arm(s.ReadHeaderTimeout)
	fc.run()
}

// run serves the connection from this goroutine until it ends, is handed
// over, or is parked (idle long enough to wait without a goroutine).
func (fc *fastConn) run() {
	if !fc.setIdle(true) {
		fc.finish(false)
		return
	}
	// One RawConn.Read for this stretch of the connection's life:
	// onReadable runs whenever the poller reports the client readable and
	// returns false to wait again. Staying inside it keeps the poller's
	// readiness armed between requests, so a request that arrived while
	// the previous response was being produced is not lost, and a
	// connection is never read just to learn that nothing came (nginx's
	// event loop, in one goroutine per connection). It returns once the
	// connection ends or is handed over; a wait that fails (timeout,
	// Shutdown's wake-up, close) ends it too, unless it was the wait
	// between requests reaching the parking time.
	err := fc.raw.Read(fc.onReadable)
	switch {
	case fc.exit == exitHandOff:
		fc.finish(fc.handOff())
	case err != nil && fc.parkable(err) && fc.srv.park(fc):
		// The parker owns the connection now.
	default:
		fc.finish(false)
	}
}

// finish ends the connection's life in this server: out of the server's
// set before the descriptor closes (unless net/http has it now).
func (fc *fastConn) finish(handedOff bool) {
	s := fc.srv
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	if !handedOff {
		fc.conn.Close()
	}
	fc.releaseReader()
	if fc.cancel != nil {
		fc.cancel()
	}
	s.wg.Done()
}

// parkable reports whether the wait that failed with err was the wait
// between requests reaching its deadline before the idle timeout.
func (fc *fastConn) parkable(err error) bool {
	if fc.srv.parker == nil || fc.srv.closing.Load() || !fc.isIdle() || fc.headerArmed {
		return false
	}
	var ne net.Error
	limit := fc.srv.idleLimit()
	return errors.As(err, &ne) && ne.Timeout() && (limit <= 0 || time.Since(fc.idleSince) < limit)
}

func (fc *fastConn) isIdle() bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.idle
}

// How the fast path leaves a connection.
const (
	exitClose = iota
	exitHandOff
)

// onReadable reads and serves every complete request the client has sent,
// then waits for more (false) or ends the connection (true, fc.exit says
// how). fd is the client socket.
func (fc *fastConn) onReadable(fd uintptr) bool {
	fc.fdr.fd = fd
	if !fc.setIdle(false) {
		fc.exit = exitClose
		return true
	}
	for {
		fc.acquireReader()
		end, st := fc.readHeaderBlock()
		switch st {
		case blockNone:
			// Nothing yet (the readiness was stale): wait as between
			// requests, idle, so Shutdown and parking see it as such.
			fc.releaseReader()
			if !fc.setIdle(true) {
				fc.exit = exitClose
				return true
			}
			return false
		case blockPartial:
			return false // the rest of the header block is on its way
		case blockEnded:
			fc.exit = exitClose
			return true // timeout, EOF or error mid-header: net/http closes too
		case blockOdd:
			fc.exit = exitHandOff
			return true
		}
		if !fc.parse(end) {
			fc.exit = exitHandOff
			return true
		}
		// The read deadline stays: the handler does not read from the
		// client (the fast path takes no request body).
		if _, err := fc.br.Discard(end); err != nil {
			fc.exit = exitClose
			return true
		}
		if !fc.handle() {
			fc.exit = exitClose
			return true
		}

		// The next request: the idle timeout until its first byte, the
		// header timeout from then on.
		fc.headerArmed = false
		fc.idleSince = time.Now()
		fc.armAt(fc.idleSince, fc.srv.idleWait())
		if fc.br.Buffered() > 0 || fc.fdr.filled {
			// Pipelined bytes, or the last read filled the buffer (the
			// socket may hold more, and no new readiness will say so).
			continue
		}
		// The last read was short: the socket was drained then, and
		// anything after it raises readiness. Wait holding no buffer.
		fc.releaseReader()
		if !fc.setIdle(true) {
			fc.exit = exitClose
			return true
		}
		return false
	}
}

// arm sets the read deadline d from now (none for d <= 0). Re-arming the
// same d within d/64 is skipped: a busy connection does not pay a timer
// update per request, at the price of a timeout up to d/64 early.
func (fc *fastConn) arm(d time.Duration) {
	var now time.Time
	if d > 0 {
		now = time.Now()
	}
	fc.armAt(now, d)
}

// armAt is arm with the time already read.
func (fc *fastConn) armAt(now time.Time, d time.Duration) {
	if d <= 0 {
		if fc.armedFor != 0 {
			fc.armedFor = 0
			_ = fc.conn.SetReadDeadline(time.Time{})
		}
		return
	}
	if fc.armedFor == d && now.Sub(fc.armedAt) < d/64 {
		return
	}
	fc.armedAt, fc.armedFor = now, d
	_ = fc.conn.SetReadDeadline(now.Add(d))
}

// fdReader reads the client socket with one recv(2) per call from inside
// the RawConn.Read callback (conn.Read would wait for the read lock the
// callback holds). EAGAIN surfaces as rawconn.ErrWouldBlock.
type fdReader struct {
	fd     uintptr
	filled bool // the last read filled the space it was given
}

func (r *fdReader) Read(p []byte) (int, error) {
	n, err := rawconn.ReadFD(r.fd, p)
	r.filled = n == len(p)
	return n, err
}

func (fc *fastConn) acquireReader() {
	if fc.br == nil {
		fc.br = fastReaders.Get().(*bufio.Reader)
		fc.br.Reset(&fc.fdr)
	}
}

func (fc *fastConn) releaseReader() {
	if fc.br != nil && fc.br.Buffered() == 0 {
		fc.br.Reset(nil)
		fastReaders.Put(fc.br)
		fc.br = nil
	}
}

// What readHeaderBlock found.
const (
	blockComplete = iota // a whole header block is buffered
	blockNone            // no byte of one: wait
	blockPartial         // part of one: wait for more
	blockEnded           // EOF, error or timeout before a complete block
	blockOdd             // too large, or truncated: for net/http to answer
)

// readHeaderBlock reads until the buffered bytes hold "\r\n\r\n" and
// returns the length of the header block.
//
// The header timeout counts from the connection's start for the first
// request (armed before waiting), from the first partial read for the
// others, and is armed once: a client dribbling header lines does not
// extend it.
func (fc *fastConn) readHeaderBlock() (end, st int) {
	for {
		n := fc.br.Buffered()
		buf, _ := fc.br.Peek(n)
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			return i + 4, blockComplete
		}
		if n >= fc.br.Size() {
			return 0, blockOdd
		}
		if n > 0 && !fc.headerArmed {
			fc.headerArmed = true
			fc.armedFor = 0 // a fresh, exact deadline
			fc.arm(fc.srv.ReadHeaderTimeout)
		}
		if _, err := fc.br.Peek(n + 1); err != nil {
			switch {
			case err == rawconn.ErrWouldBlock && n == 0:
				return 0, blockNone
			case err == rawconn.ErrWouldBlock:
				return 0, blockPartial
			case n > 0 && errors.Is(err, io.EOF):
				return 0, blockOdd // let net/http answer a truncated request
			}
			return 0, blockEnded
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// handOff gives the connection, with what is buffered, to the fallback.
func (fc *fastConn) handOff() bool {
	_ = fc.conn.SetReadDeadline(time.Time{})
	fc.armedFor = 0
	pending, _ := fc.br.Peek(fc.br.Buffered())
	rc := &replayConn{Conn: fc.conn, pending: bytes.Clone(pending)}
	return fc.srv.handoff.give(rc)
}

// parse fills fc.req from the header block buf[:end]; false means "not
// for the fast path" (the fallback decides what the request deserves).
func (fc *fastConn) parse(end int) bool {
	buf, _ := fc.br.Peek(end)
	buf = buf[:end-2] // keep the CRLF of the last header line
	req := &fc.req
	// Every request starts from the connection's template: what a
	// handler changed in the previous one does not carry over.
	clear(fc.tmpl.Header)
	*req = fc.tmpl

	line, rest, ok := bytes.Cut(buf, crlf)
	if !ok {
		return false
	}
	method, line, ok := bytes.Cut(line, sp)
	if !ok || len(method) == 0 {
		return false
	}
	target, proto, ok := bytes.Cut(line, sp)
	if !ok || len(target) == 0 || target[0] != '/' {
		return false
	}
	switch string(proto) {
	case "HTTP/1.1":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		return false // h2c preface, HTTP/0.9, garbage
	}
	for _, b := range method {
		if !isTokenByte(b) {
			return false
		}
	}
	// plain: a path that net/url keeps as is (no RawPath), so the fast
	// path can take it without parsing; anything else goes through
	// url.ParseRequestURI like net/http.
	plain, inQuery := true, false
	for _, b := range target {
		if b <= ' ' || b >= 0x7f || b == '#' {
			return false
		}
		if b == '?' {
			inQuery = true
		} else if !inQuery && !isPlainPathByte(b) {
			plain = false
		}
	}
	req.Method = internMethod(method)
	if plain {
		path, query, _ := bytes.Cut(target, question)
		req.RequestURI = fc.value(":target", target)
		if len(query) == 0 && len(path) == len(target) {
			fc.url = url.URL{Path: req.RequestURI}
		} else {
			fc.url = url.URL{Path: string(path), RawQuery: string(query)}
		}
	} else {
		u, err := url.ParseRequestURI(string(target))
		if err != nil || u.Scheme != "" || u.Host != "" {
			return false
		}
		fc.url = *u
		req.RequestURI = string(target)
	}
	req.URL = &fc.url

	hosts := 0
	keepAlive, closeConn := false, false
	for len(rest) > 0 {
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok || len(line) == 0 {
			return false
		}
		name, value, ok := bytes.Cut(line, colon)
		if !ok || len(name) == 0 {
			return false // also a leading space (obs-fold): not a token
		}
		for _, b := range name {
			if !isTokenByte(b) {
				return false
			}
		}
		value = bytes.Trim(value, " \t")
		if !validFieldValue(value) {
			return false
		}
		key := internHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			if hosts > 1 || !httpguts.ValidHostHeader(string(value)) {
				return false
			}
			req.Host = fc.value("Host", value)
			continue // net/http moves Host out of the map
		case "Content-Length":
			if string(value) != "0" || req.Header["Content-Length"] != nil {
				return false
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings", "Te", "Trailer":
			return false
		case "Connection":
			for _, tok := range bytes.Split(value, comma) {
				tok = bytes.TrimSpace(tok)
				switch {
				case bytes.EqualFold(tok, []byte("close")):
					closeConn = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				case bytes.EqualFold(tok, []byte("upgrade")):
					return false
				}
			}
		}
		req.Header[key] = append(req.Header[key], fc.value(key, value))
	}
	if hosts == 0 {
		if req.ProtoMinor == 1 {
			return false // net/http answers 400
		}
		req.Host = ""
	}
	req.Close = closeConn || req.ProtoMinor == 0 && !keepAlive
	req.Body = http.NoBody
	req.ContentLength = 0
	req.TransferEncoding = nil
	req.Trailer = nil
	req.Form, req.PostForm, req.MultipartForm = nil, nil, nil
	req.GetBody = nil
	req.Response = nil
	req.Pattern = ""
	return true
}

var (
	crlf     = []byte("\r\n")
	sp       = []byte(" ")
	colon    = []byte(":")
	comma    = []byte(",")
	question = []byte("?")
)

// isPlainPathByte: unreserved and the sub-delimiters net/url leaves
// unescaped in a path.
func isPlainPathByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return bytes.IndexByte([]byte("-_.~$&+,/:;=@"), b) >= 0
}

func isTokenByte(b byte) bool { return httpguts.IsTokenRune(rune(b)) }

var commonMethods = map[string]string{}

func init() {
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
		commonMethods[m] = m
	}
	for _, k := range []string{"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie", "Date", "Forwarded", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Origin", "Pragma",
		"Range", "Referer", "User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Real-Ip", "X-Request-Id", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest",
		"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Upgrade-Insecure-Requests", "Dnt", "Te",
		"Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Http2-Settings", "Keep-Alive", "Grpc-Timeout"} {
		commonHeaders[k] = k
	}
	for _, v := range []string{"keep-alive", "close", "*/*", "gzip", "gzip, deflate", "gzip, deflate, br", "no-cache"} {
		commonValues[v] = v
	}
}

var (
	commonHeaders = map[string]string{}
	commonValues  = map[string]string{}
)

func internMethod(m []byte) string {
	if s, ok := commonMethods[string(m)]; ok {
		return s
	}
	return string(m)
}

// internHeaderKey canonicalises a header name, without allocating for the
// common names (written canonically or in lower case).
func internHeaderKey(name []byte) string {
	if s, ok := commonHeaders[string(name)]; ok {
		return s
	}
	var tmp [64]byte
	if len(name) <= len(tmp) {
		c := tmp[:len(name)]
		upper := true
		for i, b := range name {
			if upper && 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			} else if !upper && 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			c[i] = b
			upper = b == '-'
		}
		if s, ok := commonHeaders[string(c)]; ok {
			return s
		}
		return string(c)
	}
	return http.CanonicalHeaderKey(string(name))
}

// value returns v as a string: a common value or the same value as the
// previous request's key reuse their string.
func (fc *fastConn) value(key string, v []byte) string {
	if s, ok := commonValues[string(v)]; ok {
		return s
	}
	if s, ok := fc.values[key]; ok && s == string(v) {
		return s
	}
	s := string(v)
	if fc.values != nil && len(fc.values) < 32 {
		fc.values[key] = s
	}
	return s
}

// handle runs the handler for fc.req; false means close the connection.
func (fc *fastConn) handle() (keep bool) {
	req := &fc.req
	w := &fc.w
	w.reset(req)
	fc.bw = fastWriters.Get().(*bufio.Writer)
	fc.bw.Reset(fc.conn)
	defer func() {
		fc.bw.Reset(nil)
		fastWriters.Put(fc.bw)
		fc.bw = nil
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				fc.srv.logf("http: panic serving %s: %v", req.RemoteAddr, v)
			}
			keep = false
		}
	}()
	fc.seq++
	fc.busySeq.Store(fc.seq)
	fc.srv.Handler.ServeHTTP(w, req)
	fc.busySeq.Store(0)
	if fc.tmpl.Context().Err() != nil {
		return false // the client left (watchClients)
	}
	if !w.finish() {
		return false
	}
	if err := fc.bw.Flush(); err != nil {
		return false
	}
	return !w.closeAfter && !fc.srv.closing.Load()
}

// clientLeft reports whether the client closed or reset its connection,
// looking without consuming: bytes waiting (a pipelined request) mean it
// is still there.
func (fc *fastConn) clientLeft() bool {
	left := false
	if err := fc.raw.Control(func(fd uintptr) { left = rawconn.PeerClosed(fd) }); err != nil {
		return true // the descriptor is gone
	}
	return left
}

// abort cancels the current request and interrupts its upstream exchange.
func (fc *fastConn) abort() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.aborted = true
	fc.cancel()
	if fc.upstream != nil {
		_ = fc.upstream.SetDeadline(aLongTimeAgo)
	}
}

// upstreamWatcher lets the forwarder tell the client connection which
// upstream connection a request waits on, so a client leaving interrupts
// it without a context.AfterFunc per request.
type upstreamWatcher interface {
	// watchUpstream registers c; unwatchUpstream clears it and reports
	// false when the exchange was interrupted (c must then be closed).
	watchUpstream(c net.Conn)
	unwatchUpstream() bool
}

type upstreamWatchKey struct{}

func (fc *fastConn) watchUpstream(c net.Conn) {
	fc.mu.Lock()
	fc.upstream = c
	if fc.aborted {
		_ = c.SetDeadline(aLongTimeAgo)
	}
	fc.mu.Unlock()
}

func (fc *fastConn) unwatchUpstream() bool {
	fc.mu.Lock()
	fc.upstream = nil
	ok := !fc.aborted
	fc.mu.Unlock()
	return ok
}

func (s *FastServer) logf(format string, args ...any) {
	if s.Fallback != nil && s.Fallback.ErrorLog != nil {
		s.Fallback.ErrorLog.Printf(format, args...)
	}
}

// fastWriter is the http.ResponseWriter (and Flusher) of the fast path.
type fastWriter struct {
	conn *fastConn
	hdr  http.Header
	req  *http.Request

	status      int
	wroteHeader bool // final status chosen
	sentHeader  bool // status line and header written to bw
	noBody      bool // HEAD, 204, 304
	chunked     bool
	length      int64 // declared Content-Length, -1 none
	written     int64
	closeAfter  bool
	failed      error
	pend        []byte // body held back while its length is unknown
}

func (w *fastWriter) reset(req *http.Request) {
	clear(w.hdr)
	*w = fastWriter{conn: w.conn, hdr: w.hdr, req: req, length: -1, closeAfter: req.Close, pend: w.pend[:0]}
}

func (w *fastWriter) Header() http.Header { return w.hdr }

func (w *fastWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational: sent at once, the final status follows.
		w.writeStatusAndHeader(code, false)
		w.failed = errors.Join(w.failed, w.conn.bw.Flush())
		return
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified ||
		code == http.StatusSwitchingProtocols
	if cl := w.hdr["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
}

// sendHeader writes the status line and header once the framing is known:
// first body byte, Flush, or the end of the handler.
func (w *fastWriter) sendHeader(firstChunk []byte, done bool) {
	if w.sentHeader {
		return
	}
	w.sentHeader = true
	h := w.hdr
	if _, ok := h["Content-Type"]; !ok && !w.noBody && len(firstChunk) > 0 {
		h.Set("Content-Type", http.DetectContentType(firstChunk))
	}
	if !w.noBody && w.length < 0 {
		switch {
		case done:
			w.length = w.written
			h["Content-Length"] = []string{strconv.FormatInt(w.written, 10)}
		case w.req.ProtoMinor == 0:
			w.closeAfter = true // HTTP/1.0: the body ends with the connection
		default:
			w.chunked = true
		}
	}
	w.writeStatusAndHeader(w.status, true)
}

func (w *fastWriter) writeStatusAndHeader(code int, final bool) {
	bw := w.conn.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(statusLine(code))
	for k, vs := range w.hdr {
		if !final && (k == "Content-Length" || k == "Transfer-Encoding") {
			continue
		}
		if k == "Connection" {
			if final && httpguts.HeaderValuesContainsToken(vs, "close") {
				w.closeAfter = true
			}
			continue
		}
		if k == "Transfer-Encoding" || !httpguts.ValidHeaderFieldName(k) {
			continue // framing and connection are ours
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if final {
		if _, ok := w.hdr["Date"]; !ok {
			bw.WriteString("Date: ")
			bw.Write(httpDate())
			bw.WriteString("\r\n")
		}
		if w.chunked {
			bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
		switch {
		case w.closeAfter || w.conn.srv.closing.Load():
			w.closeAfter = true
			bw.WriteString("Connection: close\r\n")
		case w.req.ProtoMinor == 0:
			bw.WriteString("Connection: keep-alive\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// writeHeaderValue writes v with CR and LF turned into spaces, as net/http.
func writeHeaderValue(bw *bufio.Writer, v string) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != '\r' && v[i] != '\n' {
			i++
		}
		bw.WriteString(v[:i])
		if i < len(v) {
			bw.WriteByte(' ')
			i++
		}
		v = v[i:]
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	if !w.sentHeader && w.length < 0 && len(w.pend)+len(p) <= pendMax {
		// Unknown length: hold small bodies back so that a handler that
		// ends soon gets a Content-Length, as with net/http.
		w.pend = append(w.pend, p...)
		w.written += int64(len(p))
		return len(p), nil
	}
	if err := w.sendPending(p); err != nil {
		return 0, err
	}
	return w.writeBody(p)
}

// pendMax is how much body of unknown length waits for the handler's end.
const pendMax = 2 << 10

// sendPending sends the header and the body held back so far.
func (w *fastWriter) sendPending(next []byte) error {
	if w.sentHeader {
		return nil
	}
	first := next
	if len(w.pend) > 0 {
		first = w.pend
	}
	w.sendHeader(first, false)
	if len(w.pend) > 0 {
		pend := w.pend
		w.written -= int64(len(pend))
		w.pend = w.pend[:0]
		if _, err := w.writeBody(pend); err != nil {
			return err
		}
	}
	return nil
}

func (w *fastWriter) writeBody(p []byte) (int, error) {
	w.written += int64(len(p))
	bw := w.conn.bw
	if w.chunked {
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.failed = err
		w.conn.cancelOnWriteError()
	}
	return n, err
}

// cancelOnWriteError: the client is gone; close the connection so a
// handler still reading upstream sees its writes fail fast.
func (fc *fastConn) cancelOnWriteError() { _ = fc.conn.Close() }

// FlushError sends what is buffered to the client.
func (w *fastWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed != nil {
		return w.failed
	}
	if err := w.sendPending(nil); err != nil {
		return err
	}
	if err := w.conn.bw.Flush(); err != nil {
		w.failed = err
		return err
	}
	return nil
}

func (w *fastWriter) Flush() { _ = w.FlushError() }

// finish completes the response after the handler; false: close.
func (w *fastWriter) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed != nil {
		return false
	}
	pend := w.pend
	w.sendHeader(pend, true)
	if len(pend) > 0 {
		w.conn.bw.Write(pend)
		w.pend = pend[:0]
	}
	if w.chunked {
		w.conn.bw.WriteString("0\r\n\r\n")
	}
	if !w.noBody && w.length >= 0 && w.written < w.length {
		return false // short body: the client must see the connection end
	}
	return true
}

var statusLines sync.Map // int -> []byte

func statusLine(code int) []byte {
	if b, ok := statusLines.Load(code); ok {
		return b.([]byte)
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b := []byte(strconv.Itoa(code) + " " + text + "\r\n")
	statusLines.Store(code, b)
	return b
}

// httpDate is the current Date header value, formatted once a second.
func httpDate() []byte {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.sec == now {
		return d.b
	}
	d := &dateCache{sec: now, b: []byte(time.Unix(now, 0).UTC().Format(http.TimeFormat))}
	cachedDate.Store(d)
	return d.b
}

type dateCache struct {
	sec int64
	b   []byte
}

var cachedDate atomic.Pointer[dateCache]
