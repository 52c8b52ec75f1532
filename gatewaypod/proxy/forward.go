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
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// attempt is one request sent on one upstream connection.
type attempt struct {
	p     *Proxy
	w     http.ResponseWriter
	req   *http.Request
	uri   string // escaped path to forward
	query string // and its raw query, without "?"
	f     forwarded
	// hasBody: the request has a body to stream (it can then not be replayed).
	hasBody bool
	// host is the Host header sent upstream: the client's, or the route's
	// upstream-vhost.
	host string
	// prefix, when set, is sent as X-Forwarded-Prefix (rewrite routes).
	prefix string
	// Timeouts of this request: the route's Upstream or the proxy's.
	connectTimeout, readTimeout, sendTimeout time.Duration
	// cors, when set, decorates the response (allowed cross-origin request).
	cors *corsReply
	// setCookie, when set, is added as a Set-Cookie header (affinity).
	setCookie string
	// log, when set, receives the request id generated for the access log.
	log *accessEntry
	// start is when the request began, kept while that is still "now"
	// (until the first endpoint answers or fails): the first exchange
	// reads no clock of its own. Zero: read the clock.
	start time.Time
}

// forwardedCopy returns a copy of a.f for the objects that outlive the
// attempt (error pages, upgrades): a.f itself then stays on the stack of
// the request, which costs no allocation.
func (a *attempt) forwardedCopy() *forwarded {
	f := a.f
	return &f
}

// replyAwaiter is a connection whose next Write can also wait for the
// reply (rawconn.Conn).
type replyAwaiter interface{ AwaitReplyAfterWrite() }

// armReadTimeout sets pc's read deadline for the response.
//
// Re-arming a deadline touches a runtime timer; on a busy keep-alive
// connection do it at most every readTimeout/64 (about 1 s for the
// default), so the effective timeout is within 2 % of the configured one.
// A cancellation sets a past deadline and closes the connection, so a stale
// deadline is never relied on. Routes may differ in timeout: a connection
// armed for another one is re-armed.
func (a *attempt) armReadTimeout(pc *upConn, now time.Time) {
	rt := a.readTimeout
	if rt <= 0 {
		return
	}
	if pc.armedFor != rt || now.Sub(pc.armedAt) > rt/64 {
		pc.armedAt, pc.armedFor = now, rt
		_ = pc.conn.SetReadDeadline(now.Add(rt))
	}
}

// failure classifies an attempt that produced no response for the client.
type failure struct {
	err error
	// connect: no connection could be made (counts against the endpoint).
	connect bool
	// replayable: the endpoint cannot have acted on the request, so it may
	// be sent to another endpoint.
	replayable bool
	// status is set when the failure is the client's (413 body too large,
	// 499 client gone) rather than the endpoint's.
	status int
}

func (f *failure) Error() string { return f.err.Error() }

// errAborted marks a response that failed after its header was sent: the
// client connection must be cut so the client sees a truncated response.
var errAborted = errors.New("response aborted")

// run forwards a.req to h. It returns the status sent to the client, or a
// *failure when nothing was sent, or errAborted.
func (a *attempt) run(h *upstreamHost) (int, error) {
	ctx := a.req.Context()
	for try := 0; ; try++ {
		now := a.start
		if try > 0 || now.IsZero() {
			now = time.Now()
		}
		pc, reused, err := h.get(ctx, a.connectTimeout, now)
		if err != nil {
			if ctx.Err() != nil {
				return 0, &failure{err: err, status: StatusClientClosedRequest}
			}
			if f, ok := err.(*failure); ok { // upstream TLS material not loaded
				return 0, f
			}
			return 0, &failure{err: err, connect: true, replayable: true}
		}
		if reused && a.hasBody && time.Since(pc.idleSince) > time.Second && !pc.alive() {
			pc.close()
			try--
			continue
		}
		code, err := a.exchange(ctx, pc, now)
		if err == nil {
			return code, nil
		}
		var f *failure
		if errors.As(err, &f) && f.replayable && reused && try == 0 && !a.hasBody {
			// A reused keep-alive connection the endpoint had closed: retry
			// once on a fresh one, as net/http's Transport does.
			continue
		}
		return code, err
	}
}

// exchange sends the request on pc and relays the response. pc is returned
// to the pool or closed.
// now is the time the exchange starts.
func (a *attempt) exchange(ctx context.Context, pc *upConn, now time.Time) (code int, err error) {
	p := a.p
	stop := neverStopped
	if uw, ok := ctx.Value(upstreamWatchKey{}).(upstreamWatcher); ok {
		// The fast path's client connection interrupts the exchange.
		uw.watchUpstream(pc.conn)
		stop = uw.unwatchUpstream
	} else if ctx.Done() != nil { // a context that can end aborts the exchange
		stop = context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(aLongTimeAgo) })
	}
	reusable := false
	defer func() {
		if !stop() || !reusable {
			pc.close()
			return
		}
		pc.host.put(pc)
	}()

	if !a.hasBody {
		// The response timeout runs from the request's send, and the
		// write also waits for the reply where the connection can.
		a.armReadTimeout(pc, now)
		if aw, ok := pc.conn.(replyAwaiter); ok {
			aw.AwaitReplyAfterWrite()
		}
	}
	if err := a.writeRequest(pc); err != nil {
		return 0, err
	}
	if a.hasBody {
		a.armReadTimeout(pc, time.Now()) // the wait for the response starts after the body
	}
	hdr := a.w.Header()
	var rs responseState
	for {
		rs, err = readResponseHeader(pc, hdr)
		if err != nil {
			clear(hdr)
			if ctx.Err() != nil {
				return 0, &failure{err: err, status: StatusClientClosedRequest}
			}
			// No byte of a response: the endpoint may have closed an idle
			// connection before reading the request.
			return 0, &failure{err: err, replayable: rs.empty}
		}
		if rs.code >= 200 {
			break
		}
		if rs.code == http.StatusSwitchingProtocols {
			clear(hdr)
			return 0, &failure{err: errors.New("unexpected 101 Switching Protocols")}
		}
		clear(hdr) // 1xx informational: skip
	}

	noBody := a.req.Method == http.MethodHead || rs.code == http.StatusNoContent || rs.code == http.StatusNotModified
	if noBody {
		rs.chunked, rs.length = false, 0
	}
	if a.cors != nil {
		a.cors.decorate(hdr)
	}
	if a.setCookie != "" {
		hdr["Set-Cookie"] = append(hdr["Set-Cookie"], a.setCookie)
	}
	a.w.WriteHeader(rs.code)
	if noBody {
		reusable = rs.keepAlive
		return rs.code, nil
	}
	flush := rs.chunked || rs.length < 0 || strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream")
	var body io.Reader = pc.br
	if rs.chunked {
		body = httputil.NewChunkedReader(pc.br)
	} else if rs.length >= 0 && int64(pc.br.Buffered()) >= rs.length {
		// The whole body is already buffered: one write, no copy buffer.
		b, _ := pc.br.Peek(int(rs.length))
		_, werr := a.w.Write(b)
		_, _ = pc.br.Discard(len(b))
		reusable = rs.keepAlive && werr == nil
		return rs.code, nil
	}
	n, rerr, werr := a.copyBody(pc, body, rs.length, flush)
	switch {
	case werr != nil:
		return rs.code, nil // the client left; nothing to tell it
	case rerr != nil && rerr != io.EOF, rs.length >= 0 && n != rs.length:
		if ctx.Err() != nil {
			return rs.code, nil
		}
		p.log.Debug("Upstream body broken", "endpoint", pc.host.addr, "err", rerr, "read", n, "want", rs.length)
		return rs.code, errAborted
	}
	if rs.chunked {
		if err := readTrailers(pc, hdr); err != nil {
			return rs.code, errAborted
		}
	}
	reusable = rs.keepAlive && rs.length >= 0 || rs.keepAlive && rs.chunked
	return rs.code, nil
}

// copyBody relays up to length bytes (all until EOF when length < 0).
func (a *attempt) copyBody(pc *upConn, body io.Reader, length int64, flush bool) (n int64, rerr, werr error) {
	bp := a.p.buffers.getBuf()
	defer a.p.buffers.putBuf(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(a.w)
	}
	for length < 0 || n < length {
		b := buf
		if length >= 0 && int64(len(b)) > length-n {
			b = b[:length-n]
		}
		if t := a.readTimeout; t > 0 && pc.br.Buffered() == 0 {
			if now := time.Now(); pc.armedFor != t || now.Sub(pc.armedAt) > t/64 {
				pc.armedAt, pc.armedFor = now, t
				_ = pc.conn.SetReadDeadline(now.Add(t))
				if a.req.Context().Err() != nil {
					return n, context.Canceled, nil
				}
			}
		}
		k, err := body.Read(b)
		if k > 0 {
			if _, werr = a.w.Write(b[:k]); werr != nil {
				return n, nil, werr
			}
			n += int64(k)
			if flush {
				if werr = rc.Flush(); werr != nil {
					return n, nil, werr
				}
			}
		}
		if err != nil {
			return n, err, nil
		}
	}
	return n, nil, nil
}

// responseState is what readResponseHeader learnt about framing and reuse.
type responseState struct {
	code      int
	length    int64 // -1: unknown (read to EOF, or chunked)
	chunked   bool
	keepAlive bool
	empty     bool // not one byte of a response was read
}

// readResponseHeader parses a status line and header block into hdr,
// leaving out hop-by-hop headers.
func readResponseHeader(pc *upConn, hdr http.Header) (rs responseState, err error) {
	rs.length = -1
	rs.empty = true
	line, err := pc.readLine()
	if err != nil {
		rs.empty = pc.br.Buffered() == 0 && len(line) == 0
		return rs, err
	}
	rs.empty = false
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return rs, errors.New("malformed status line")
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return rs, errors.New("malformed status code")
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return rs, errors.New("malformed status code")
	}
	rs.code = code
	rs.keepAlive = line[7] == '1'
	var connTokens []byte
	haveLength := false
	for {
		line, err = pc.readLine()
		if err != nil {
			return rs, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return rs, errors.New("obsolete header line folding")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return rs, errors.New("malformed header line")
		}
		key, err := pc.canonicalKey(line[:colon])
		if err != nil {
			return rs, err
		}
		v := bytes.TrimLeft(line[colon+1:], " \t")
		v = bytes.TrimRight(v, " \t")
		if !validFieldValue(v) {
			// A control byte would be relayed to the client as is, and
			// the client could not parse the response (RFC 9110 §5.5).
			return rs, errors.New("malformed header value")
		}
		switch key {
		case "Content-Length":
			// 1*DIGIT only (RFC 9110 §8.6): ParseInt would take "+0", and the
			// header is relayed as received.
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || !allDigits(v) || (haveLength && n != rs.length) {
				return rs, errors.New("bad Content-Length")
			}
			rs.length, haveLength = n, true
		case "Transfer-Encoding":
			// Only "chunked" (last) is meaningful to a proxy; anything else
			// the backend would have to close-delimit.
			rs.chunked = bytes.HasSuffix(bytes.ToLower(v), []byte("chunked"))
			continue
		case "Connection":
			connTokens = append(append(connTokens, v...), ',')
			continue
		case "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer", "Proxy-Authenticate":
			continue
		}
		if old, ok := hdr[key]; ok {
			hdr[key] = append(old[:len(old):len(old)], string(v))
		} else {
			hdr[key] = pc.value(key, v)
		}
	}
	if rs.chunked {
		rs.length = -1
		delete(hdr, "Content-Length")
	}
	if _, ok := hdr["Content-Type"]; !ok {
		// Relay "no Content-Type" as such: a nil entry stops net/http from
		// sniffing one and adding it.
		hdr["Content-Type"] = nil
	}
	for len(connTokens) > 0 {
		var tok []byte
		tok, connTokens, _ = bytes.Cut(connTokens, []byte(","))
		tok = bytes.TrimSpace(tok)
		switch {
		case len(tok) == 0:
		case bytes.EqualFold(tok, []byte("close")):
			rs.keepAlive = false
		case bytes.EqualFold(tok, []byte("keep-alive")):
			// HTTP/1.0 keep-alive is not relied on: 1.0 connections close.
		default:
			k, err := pc.canonicalKey(tok)
			if err == nil {
				delete(hdr, k)
			}
		}
	}
	if !rs.chunked && !haveLength {
		rs.keepAlive = false // body delimited by close
	}
	return rs, nil
}

// readTrailers reads the trailer section after a chunked body and announces
// each field to net/http as a trailer.
func readTrailers(pc *upConn, hdr http.Header) error {
	for {
		line, err := pc.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errors.New("malformed trailer line")
		}
		key, err := pc.canonicalKey(line[:colon])
		if err != nil {
			return err
		}
		hdr.Add(http.TrailerPrefix+key, string(bytes.TrimSpace(line[colon+1:])))
	}
}

// writeRequest writes the request line, headers and body to pc.
func (a *attempt) writeRequest(pc *upConn) error {
	req, bw, p := a.req, pc.bw, a.p
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(a.uri)
	if a.query != "" {
		bw.WriteByte('?')
		bw.WriteString(a.query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(a.host)
	bw.WriteString("\r\n")

	conn := req.Header[hdrConnection]
	for k, vv := range req.Header {
		if hopHeaders[k] {
			if k == "Te" && len(vv) == 1 && strings.EqualFold(vv[0], "trailers") {
				bw.WriteString("Te: trailers\r\n")
			}
			continue
		}
		if !a.f.trusted && forwardedHeaders[k] || k == hdrXForwardedFor || k == hdrXRealIP {
			continue
		}
		if k == hdrXRequestID && (len(vv) != 1 || !validRequestID(vv[0])) {
			continue
		}
		if k == hdrXForwardedPrefix && a.prefix != "" {
			continue
		}
		if len(conn) > 0 && connectionListed(conn, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}

	// X-Forwarded-For: the trusted chain, then our peer.
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range a.f.priorFor {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	bw.WriteString(a.f.peerIP)
	bw.WriteString("\r\nX-Real-Ip: ")
	bw.WriteString(a.f.realIP)
	bw.WriteString("\r\n")
	trusted := func(k string) bool { return a.f.trusted && len(req.Header[k]) > 0 }
	if !trusted(hdrXForwardedHost) {
		bw.WriteString("X-Forwarded-Host: ")
		bw.WriteString(req.Host)
		bw.WriteString("\r\n")
	}
	if !trusted(hdrXForwardedProto) {
		bw.WriteString("X-Forwarded-Proto: ")
		bw.WriteString(a.f.proto)
		bw.WriteString("\r\n")
	}
	if a.f.port != 0 && !trusted(hdrXForwardedPort) {
		bw.WriteString("X-Forwarded-Port: ")
		// Formatted in bw's own free space: a local array would escape
		// through bw.Write and cost an allocation per request.
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(a.f.port), 10))
		bw.WriteString("\r\n")
	}
	if a.prefix != "" {
		bw.WriteString("X-Forwarded-Prefix: ")
		bw.WriteString(a.prefix)
		bw.WriteString("\r\n")
	}
	if rid := req.Header[hdrXRequestID]; len(rid) != 1 || !validRequestID(rid[0]) {
		bw.WriteString("X-Request-Id: ")
		id := p.requestIDs.appendNext(bw.AvailableBuffer())
		bw.Write(id)
		if a.log != nil {
			a.log.requestID = string(id)
		}
		bw.WriteString("\r\n")
	}

	switch {
	case !a.hasBody:
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			return &failure{err: err, replayable: true}
		}
		return nil
	case req.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		return a.writeBody(pc, bw, req.ContentLength)
	default:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if err := a.writeBody(pc, cw, -1); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return &failure{err: err}
		}
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			return &failure{err: err}
		}
		return nil
	}
}

// writeBody streams the client's body to pc through w (pc.bw, or a chunked
// writer on it), flushing as data arrives so uploads are not buffered.
func (a *attempt) writeBody(pc *upConn, w io.Writer, length int64) error {
	bp := a.p.buffers.getBuf()
	defer a.p.buffers.putBuf(bp)
	buf := *bp
	var n int64
	for {
		b := buf
		if length >= 0 && int64(len(b)) > length-n {
			b = b[:length-n]
		}
		k, rerr := a.req.Body.Read(b)
		if k > 0 {
			if t := a.sendTimeout; t > 0 {
				_ = pc.conn.SetWriteDeadline(time.Now().Add(t))
			}
			if _, err := w.Write(b[:k]); err != nil {
				return &failure{err: err}
			}
			if err := pc.bw.Flush(); err != nil {
				return &failure{err: err}
			}
			n += int64(k)
		}
		if length >= 0 && n == length {
			return nil
		}
		if rerr == io.EOF {
			if length >= 0 {
				return &failure{err: io.ErrUnexpectedEOF, status: http.StatusBadRequest}
			}
			return nil
		}
		if rerr != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](rerr); ok {
				return &failure{err: rerr, status: http.StatusRequestEntityTooLarge}
			}
			return &failure{err: rerr, status: StatusClientClosedRequest}
		}
	}
}

// neverStopped stands for context.AfterFunc's stop under a context that
// never ends.
func neverStopped() bool { return true }

// allDigits reports whether b is one or more ASCII digits.
func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// validFieldValue reports whether v holds no control byte other than HTAB.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
