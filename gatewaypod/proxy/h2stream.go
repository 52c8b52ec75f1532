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
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
)

// MetricStreamErrors counts HTTP/2 upstream streams (GRPC and GRPCS routes)
// cut by an idle timeout or broken by the upstream, by reason
// (StreamError* values).
const MetricStreamErrors = "portico_gatewaypod_upstream_stream_errors_total"

// Values of the reason label of MetricStreamErrors.
const (
	// StreamErrorHeaderTimeout: no response header within the read
	// timeout (504, gRPC DEADLINE_EXCEEDED; an endpoint failure).
	StreamErrorHeaderTimeout = "header_timeout"
	// StreamErrorReadTimeout: the response body was silent for longer than
	// the read timeout (an endpoint failure).
	StreamErrorReadTimeout = "read_timeout"
	// StreamErrorSendTimeout: no request body read for longer than the send
	// timeout (408; not the endpoint's fault).
	StreamErrorSendTimeout = "send_timeout"
	// StreamErrorReset: the upstream reset the stream or lost the
	// connection mid-response (an endpoint failure).
	StreamErrorReset = "upstream_reset"
)

var streamErrorReasons = []string{StreamErrorHeaderTimeout, StreamErrorReadTimeout, StreamErrorSendTimeout, StreamErrorReset}

func newStreamErrors() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricStreamErrors,
		Help: "HTTP/2 (gRPC) upstream streams cut by an idle timeout or broken by the upstream, by reason.",
	}, []string{"reason"})
	for _, r := range streamErrorReasons {
		c.WithLabelValues(r)
	}
	return c
}

// Causes of the cancellation of an upstream stream by its idle timers.
var (
	errStreamReadTimeout = errors.New("upstream sent nothing for longer than the read timeout")
	errStreamSendTimeout = errors.New("client sent nothing for longer than the send timeout")
)

// h2Stream times one request of an HTTP/2 route with the route's timeouts,
// as nginx's grpc_read_timeout and grpc_send_timeout do: they bound the
// time between two successive reads, not the whole call, so a stream that
// keeps sending lives as long as it likes.
//   - read: armed from the moment the request header is written upstream
//     until the response header arrives, then during each read of the
//     response body (time spent writing to a slow client does not count).
//   - send: armed from the first read of the request body until its end,
//     reset whenever a read returns; it covers a silent client and an
//     upstream that does not take the body (flow control) alike.
//
// A timer that fires aborts the upstream request (see abort) with its
// cause; the handler goroutine then sees the error and decides what the
// client gets (bodyFailed, http2Error).
type h2Stream struct {
	p        *Proxy
	ut       *upgradeTarget
	client   context.Context // the client's request: done when it leaves
	ctx      context.Context // the upstream request's
	cancel   context.CancelCauseFunc
	grpc     bool
	connect  time.Duration // the route's connect timeout; 0: the dialer's
	readIdle time.Duration
	read     *time.Timer // nil when readIdle is 0
	res      *http.Response
	body     *sendIdleBody // the HTTP/2 request body to close on abort; nil without one

	// code, when not 0, is the status recorded for metrics and the access
	// log instead of the one the client saw first (a stream that broke
	// after its 200). Set on the handler goroutine only.
	code int
}

// newH2Stream prepares the timers of one request and returns the request
// to hand to the ReverseProxy. The caller must call s.done when done.
func newH2Stream(p *Proxy, ut *upgradeTarget, req *http.Request, a *attempt) (*h2Stream, *http.Request) {
	s := &h2Stream{p: p, ut: ut, client: req.Context(), grpc: isGRPC(req), connect: a.connectTimeout, readIdle: a.readTimeout}
	ctx := context.WithValue(req.Context(), upgradeKey{}, ut)
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	if s.readIdle > 0 {
		s.read = time.AfterFunc(s.readIdle, func() { s.abort(errStreamReadTimeout) })
		s.read.Stop()
		s.ctx = httptrace.WithClientTrace(s.ctx, &httptrace.ClientTrace{
			WroteHeaders: func() { s.read.Reset(s.readIdle) },
		})
	}
	out := req.WithContext(s.ctx)
	if req.Body != nil && req.Body != http.NoBody {
		b := &sendIdleBody{rc: req.Body, d: a.sendTimeout}
		if b.d > 0 {
			b.t = time.AfterFunc(b.d, func() {
				if !b.closed.Load() {
					s.abort(errStreamSendTimeout)
				}
			})
			b.t.Stop()
		}
		out.Body = b
		if req.ProtoMajor == 2 {
			// Closing it only breaks a pipe. An HTTP/1 body's Close waits
			// for a read in progress, so it is left to net/http.
			s.body = b
		}
	}
	return s, out
}

// abort cancels the upstream request with cause, and closes the client's
// request body: the transport notices a cancellation only between its
// reads of the body, and a client stream may be silent for long.
func (s *h2Stream) abort(cause error) {
	s.cancel(cause)
	if s.body != nil {
		_ = s.body.Close()
	}
}

// done stops the timers once the ReverseProxy has returned.
func (s *h2Stream) done() {
	if s.read != nil {
		s.read.Stop()
	}
	s.cancel(nil)
}

// gotResponse stops the wait for the response header and times the reads
// of the body. It runs in ModifyResponse.
func (s *h2Stream) gotResponse(res *http.Response) {
	s.res = res
	if s.read != nil {
		s.read.Stop()
	}
	if res.Body != nil && res.Body != http.NoBody {
		res.Body = &streamBody{rc: res.Body, s: s}
	}
}

// timedOut reports which idle timer, if any, cancelled the stream.
func (s *h2Stream) timedOut() error {
	switch cause := context.Cause(s.ctx); {
	case errors.Is(cause, errStreamReadTimeout):
		return errStreamReadTimeout
	case errors.Is(cause, errStreamSendTimeout):
		return errStreamSendTimeout
	}
	return nil
}

// bodyFailed decides what a failed read of the response body means, for
// the endpoint's passive health and for the client, and returns the error
// to hand to the ReverseProxy: io.EOF when the stream is to end cleanly
// with a gRPC status in its trailers, else an error that makes it abort
// (reset) the client's stream.
//
// Only a broken transport counts against the endpoint. A grpc-status in
// trailers, whatever its value (UNAVAILABLE too), is the application's
// answer and relayed as such: it arrives as the end of a well-formed
// stream and never reaches this function.
func (s *h2Stream) bodyFailed(err error) error {
	ut := s.ut
	ut.failureSeen = true // health is decided here, not by the status code
	switch s.timedOut() {
	case errStreamReadTimeout:
		s.code = http.StatusGatewayTimeout
		ut.ep.ReportFailure(time.Now())
		s.p.metrics.streamErrs.WithLabelValues(StreamErrorReadTimeout).Inc()
		s.p.log.Warn("Upstream stream timed out", "backend", ut.backend, "endpoint", ut.addr,
			"path", ut.path, "status", s.code, "readTimeout", s.readIdle)
		return s.endWithStatus(err, "upstream sent nothing for longer than proxy-read-timeout")
	case errStreamSendTimeout:
		s.code = http.StatusRequestTimeout
		s.p.metrics.streamErrs.WithLabelValues(StreamErrorSendTimeout).Inc()
		s.p.log.Debug("Client stream timed out", "backend", ut.backend, "endpoint", ut.addr, "path", ut.path)
		return s.endWithStatus(err, "client sent nothing for longer than proxy-send-timeout")
	}
	if s.client.Err() != nil {
		// The client cancelled its call (RST_STREAM CANCEL) or left: the
		// upstream stream was cancelled on its behalf.
		s.code = StatusClientClosedRequest
		return err
	}
	s.code = http.StatusBadGateway
	if !upstreamFault(err) {
		s.p.log.Debug("Upstream ended the stream", "backend", ut.backend, "endpoint", ut.addr, "err", err)
		return err
	}
	ut.ep.ReportFailure(time.Now())
	s.p.metrics.streamErrs.WithLabelValues(StreamErrorReset).Inc()
	s.p.log.Warn("Upstream stream broke", "backend", ut.backend, "endpoint", ut.addr,
		"path", ut.path, "status", s.code, "err", err)
	return err
}

// endWithStatus ends the stream of a gRPC client cleanly with
// DEADLINE_EXCEEDED in the trailers (a grpc-go client reports
// codes.DeadlineExceeded and the message), or returns err so that the
// ReverseProxy resets the stream of any other client: it has no way to
// tell a truncated body from a whole one otherwise.
func (s *h2Stream) endWithStatus(err error, msg string) error {
	if !s.grpc {
		return err
	}
	// The transport writes res.Trailer only from the goroutine reading the
	// body, which is this one, and no longer after a cancellation.
	if s.res.Trailer == nil {
		s.res.Trailer = http.Header{}
	}
	for _, k := range grpcStatusHeaders {
		delete(s.res.Trailer, k)
	}
	s.res.Trailer.Set("Grpc-Status", strconv.Itoa(grpcDeadlineExceeded))
	s.res.Trailer.Set("Grpc-Message", msg)
	return io.EOF
}

// upstreamFault reports whether a failed read of a response body is the
// upstream's doing: a connection lost or reset, a GOAWAY with an error, a
// stream reset with an error code. A stream reset with CANCEL or NO_ERROR
// is the upstream ending the call on purpose (a server-side deadline, a
// handler that returned early) and is not held against the endpoint.
func upstreamFault(err error) bool {
	var se http2.StreamError // net/http's bundled StreamError converts to it
	if errors.As(err, &se) {
		return se.Code != http2.ErrCodeCancel && se.Code != http2.ErrCodeNo
	}
	return true
}

// streamBody arms the read timer around each read of a response body.
type streamBody struct {
	rc io.ReadCloser
	s  *h2Stream
}

func (b *streamBody) Read(p []byte) (int, error) {
	t := b.s.read
	if t != nil {
		t.Reset(b.s.readIdle)
	}
	n, err := b.rc.Read(p)
	if t != nil {
		t.Stop()
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	return n, b.s.bodyFailed(err)
}

func (b *streamBody) Close() error { return b.rc.Close() }

// sendIdleBody is a request body whose timer cancels the upstream request
// when no read returns for d: the transport reads it as fast as the
// upstream takes it, so a silent client and a stalled upstream both show.
type sendIdleBody struct {
	rc      io.ReadCloser
	d       time.Duration
	t       *time.Timer
	started bool // read goroutine only
	closed  atomic.Bool
	once    sync.Once
	err     error // of the Close
}

func (b *sendIdleBody) Read(p []byte) (int, error) {
	if b.t == nil {
		return b.rc.Read(p)
	}
	if !b.started {
		b.started = true
		b.t.Reset(b.d)
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.t.Stop()
		return n, err
	}
	if !b.closed.Load() {
		b.t.Reset(b.d)
	}
	return n, nil
}

// Close closes the client's request body, which ends a read the transport
// is blocked in (an HTTP/2 request body is a pipe). The transport and the
// timers may both call it.
func (b *sendIdleBody) Close() error {
	b.once.Do(func() {
		b.closed.Store(true)
		if b.t != nil {
			b.t.Stop()
		}
		b.err = b.rc.Close()
	})
	return b.err
}

// rewriteHTTP2 rewrites the request of an HTTP/2 route like an upgrade's,
// and hands the transport a request body it can close. ReverseProxy gives
// the transport the client's body behind a Close that does nothing (an
// HTTP/1 body's Close may wait for bytes the client holds back), but the
// transport ends a stream (upstream reset, connection lost, response done
// before the client's stream) only once its read of the request body
// returns: with a client stream that stays open, that was never, and the
// call hung. Closing an HTTP/2 request body only breaks its pipe.
func (p *Proxy) rewriteHTTP2(pr *httputil.ProxyRequest) {
	p.rewriteUpgrade(pr)
	ut, _ := pr.In.Context().Value(upgradeKey{}).(*upgradeTarget)
	if ut != nil && ut.stream != nil && ut.stream.body != nil && pr.Out.Body != nil {
		pr.Out.Body = ut.stream.body
	}
}

// dialFor returns dialer, or a copy with the connect timeout of the route
// whose request ctx carries, so a GRPC or GRPCS route's
// proxy-connect-timeout bounds the dial (and the TLS handshake) of the
// HTTP/2 connections it opens. A connection is shared by the requests of
// every route to the backend; the route that opens it times the dial.
func dialFor(ctx context.Context, dialer *net.Dialer) *net.Dialer {
	ut, _ := ctx.Value(upgradeKey{}).(*upgradeTarget)
	if ut == nil || ut.stream == nil {
		return dialer
	}
	return withConnectTimeout(dialer, ut.stream.connect)
}
