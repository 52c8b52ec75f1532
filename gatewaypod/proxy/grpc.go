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
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/gatewaypod/router"
)

// gRPC status codes the proxy answers with (google.golang.org/grpc/codes).
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// isGRPC reports a gRPC request (application/grpc, +proto, +json ...).
func isGRPC(req *http.Request) bool {
	ct := req.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && (len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// grpcStatus maps a status the proxy generates to a gRPC code, as gRPC's
// HTTP-to-gRPC mapping does (Envoy answers gRPC clients the same way),
// except that a timeout (504, 408) is DEADLINE_EXCEEDED and a body too large
// is RESOURCE_EXHAUSTED.
func grpcStatus(code int) int {
	switch code {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return grpcDeadlineExceeded
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcReply answers a gRPC client with a Trailers-Only response: HTTP 200,
// grpc-status and grpc-message in the header block, no body. It returns
// code, the status recorded for metrics and the access log. msg must be
// plain ASCII without '%' (it is sent as is, not percent-encoded).
func (p *Proxy) grpcReply(w http.ResponseWriter, code int, msg string) int {
	h := w.Header()
	h.Set("Server", ServerHeader)
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(grpcStatus(code)))
	h.Set("Grpc-Message", msg)
	w.WriteHeader(http.StatusOK)
	return code
}

// serveHTTP2 forwards a request of a GRPC or GRPCS route over HTTP/2 with
// httputil.ReverseProxy and the route's pooled transport: bodies stream
// both ways without buffering, responses are flushed as they come, and
// trailers (grpc-status, grpc-message) are relayed. A failure becomes a
// gRPC status for gRPC clients and 502/504 for others. The route's read
// and send timeouts bound the silences of the stream, not its length (see
// h2Stream). It returns the status for metrics and the access log, and
// whether the client's stream must be reset (it broke after its header).
func (p *Proxy) serveHTTP2(w http.ResponseWriter, req *http.Request, t *target, i int, d *router.Decision, fwdPath string, a *attempt) (code int, abort bool) {
	ep := t.pool.Endpoints[i]
	sw := &statusRecorder{ResponseWriter: w}
	ut := &upgradeTarget{addr: ep.Addr, backend: t.pool.Name, path: d.Path, raw: fwdPath, query: d.RawQuery,
		host: a.host, prefix: a.prefix, f: a.forwardedCopy(), ep: ep, status: sw, log: a.log, up: t.up, cors: a.cors, setCookie: a.setCookie}
	if a.log != nil {
		a.log.endpoint = ep.Addr
	}
	if d.Rewritten {
		ut.raw = d.Path
	}
	s, out := newH2Stream(p, ut, req, a)
	ut.stream = s
	defer s.done()
	ep.Acquire()
	defer ep.Release()
	abort = p.relayHTTP2(sw, out)
	code = sw.status()
	if s.code != 0 {
		code = s.code
	} else if abort {
		// Not a failed read of the upstream (bodyFailed sets s.code): the
		// write to the client failed, so the client is gone.
		code, ut.failureSeen = StatusClientClosedRequest, true
	}
	switch {
	case ut.failureSeen:
	case code >= 500:
		ep.ReportFailure(time.Now())
	default:
		ep.ReportSuccess()
	}
	return code, abort
}

// relayHTTP2 runs the ReverseProxy and reports whether it aborted the
// client's stream (http.ErrAbortHandler, after its header was sent), so
// that the request is counted before the abort goes on to net/http.
func (p *Proxy) relayHTTP2(w http.ResponseWriter, req *http.Request) (aborted bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler {
				panic(r)
			}
			aborted = true
		}
	}()
	p.http2.ServeHTTP(w, req)
	return false
}

// modifyHTTP2 decorates a relayed response like the fast path does.
func (p *Proxy) modifyHTTP2(res *http.Response) error {
	ut, ok := res.Request.Context().Value(upgradeKey{}).(*upgradeTarget)
	if !ok {
		return nil
	}
	if ut.stream != nil {
		ut.stream.gotResponse(res)
	}
	if ut.cors != nil {
		ut.cors.decorate(res.Header)
	}
	if ut.setCookie != "" {
		res.Header["Set-Cookie"] = append(res.Header["Set-Cookie"], ut.setCookie)
	}
	trailersOnlyToTrailers(res)
	return nil
}

// grpcStatusHeaders end a gRPC call: in trailers, or in the only HEADERS
// frame of a Trailers-Only response.
var grpcStatusHeaders = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}

// trailersOnlyToTrailers moves the status of a Trailers-Only response (one
// HEADERS frame with END_STREAM: the transport reports it as a header and a
// zero ContentLength) into trailers. ReverseProxy's flush timer may send the
// header before the handler returns, and a gRPC client ignores a status in
// a header frame that does not end the stream; as header plus trailers the
// response is valid whichever way the flush falls.
func trailersOnlyToTrailers(res *http.Response) {
	if res.ContentLength != 0 || res.Header.Get("Grpc-Status") == "" {
		return
	}
	if res.Trailer == nil {
		res.Trailer = http.Header{}
	}
	for _, k := range grpcStatusHeaders {
		if v, ok := res.Header[k]; ok {
			res.Trailer[k] = v
			delete(res.Header, k)
		}
	}
}

// http2Error answers when an HTTP/2 upstream could not be reached or broke
// before its response header: a gRPC status for gRPC clients (14
// UNAVAILABLE, 4 DEADLINE_EXCEEDED), else 502/504 (408 when the client's
// stream stalled).
func (p *Proxy) http2Error(w http.ResponseWriter, req *http.Request, err error) {
	ut := req.Context().Value(upgradeKey{}).(*upgradeTarget)
	ut.failureSeen = true
	code := http.StatusBadGateway
	timedOut := ut.stream.timedOut()
	switch {
	case timedOut == errStreamReadTimeout:
		code, err = http.StatusGatewayTimeout, timedOut
		ut.ep.ReportFailure(time.Now())
		p.metrics.streamErrs.WithLabelValues(StreamErrorHeaderTimeout).Inc()
	case timedOut == errStreamSendTimeout:
		// The client's fault, not the endpoint's.
		code, err = http.StatusRequestTimeout, timedOut
		p.metrics.streamErrs.WithLabelValues(StreamErrorSendTimeout).Inc()
	case req.Context().Err() != nil && !errors.Is(req.Context().Err(), context.DeadlineExceeded):
		code = StatusClientClosedRequest
	case errors.Is(err, errUpstreamTLSUnavailable):
		// Not the endpoint's fault: no passive-health failure.
	case isTimeout(err):
		code = http.StatusGatewayTimeout
		ut.ep.ReportFailure(time.Now())
	default:
		ut.ep.ReportFailure(time.Now())
	}
	if code == StatusClientClosedRequest {
		w.WriteHeader(code)
		return
	}
	if code >= 500 {
		p.log.Warn("Upstream request failed", "backend", ut.backend, "endpoint", ut.addr, "host", req.Host,
			"path", req.URL.Path, "status", code, "err", err)
	}
	if isGRPC(req) {
		msg := "upstream unavailable: " + http.StatusText(code)
		switch timedOut {
		case errStreamReadTimeout:
			msg = "no upstream response header within proxy-read-timeout"
		case errStreamSendTimeout:
			msg = "client sent nothing for longer than proxy-send-timeout"
		}
		ut.stream.code = p.grpcReply(w, code, msg) // the client sees 200
		return
	}
	p.reply(w, code, http.StatusText(code))
}

// routeTransport sends the requests of the ReverseProxy paths (upgrades,
// HTTP/2 routes) with their route's transport, or def for plain HTTP.
type routeTransport struct{ def http.RoundTripper }

func (rt routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ut, _ := req.Context().Value(upgradeKey{}).(*upgradeTarget)
	if ut == nil || ut.up == nil {
		return rt.def.RoundTrip(req)
	}
	g := ut.up.gen.Load()
	if g.err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, g.err
	}
	return g.rt.RoundTrip(req)
}

// newHTTP2Proxy returns the ReverseProxy of HTTP/2 routes.
func (p *Proxy) newHTTP2Proxy(rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        p.rewriteHTTP2,
		Transport:      rt,
		BufferPool:     p.buffers,
		FlushInterval:  -1, // flush every write: gRPC messages must not wait
		ModifyResponse: p.modifyHTTP2,
		ErrorHandler:   p.http2Error,
		ErrorLog:       p.upgrade.ErrorLog,
	}
}
