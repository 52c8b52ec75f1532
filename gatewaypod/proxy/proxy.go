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

// Package proxy is gatewaypod's HTTP data plane: an http.Handler that routes
// each request with the current router.Router and forwards it to one endpoint
// of the matched backend with httputil.ReverseProxy.
//
// The router is swapped atomically (Swap) and loaded once per request, so a
// request sees one configuration from start to end and a swap never drops a
// request or a keep-alive connection. Everything that must survive a swap,
// the upstream connection pools (one shared http.Transport) and the
// round-robin positions (keyed by backend name), lives in the Proxy, not in
// the router.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/router"
)

// ServerHeader is the Server header of every response the proxy generates
// itself (404, 502, 503 ...), so they can be told apart from a backend's.
const ServerHeader = "portico"

// StatusClientClosedRequest is recorded (as nginx does) when the client went
// away before the backend answered; nobody receives it.
const StatusClientClosedRequest = 499

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Registerer receives the proxy's metrics. Nil registers nothing; the
	// process passes its own registry (no global state).
	Registerer prometheus.Registerer
	// Logger receives upstream errors. Nil discards them.
	Logger *slog.Logger
	// Transport forwards requests to endpoints. Nil means NewTransport().
	// It is shared by every router, so connection pools survive swaps.
	Transport http.RoundTripper
}

// Proxy is an http.Handler that forwards requests according to the router
// most recently given to Swap. Until the first Swap it answers 503.
type Proxy struct {
	router  atomic.Pointer[router.Router]
	rr      roundRobin
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	metrics *metrics
}

// New returns a Proxy with no router. It fails only if its metrics cannot
// be registered (for example, registered twice on one registry).
func New(opts Options) (*Proxy, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewTransport()
	}
	p := &Proxy{log: log, metrics: m}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    transport,
		BufferPool:   newBufferPool(),
		ErrorHandler: p.upstreamError,
		// Failures before the response reach upstreamError; what ReverseProxy
		// logs itself is a connection closing mid-body, worth a debug line.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// NewTransport returns the transport used when Options.Transport is nil:
// plain HTTP/1.1 with keep-alive pools sized for many clients per endpoint,
// no environment proxy, and no transparent compression (bodies pass through
// as the backend sent them).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}

// Swap makes rt the router for every request that starts from now on and
// returns the previous one (nil on the first call). Requests already being
// served finish with the router they started with. rt must not be nil.
func (p *Proxy) Swap(rt *router.Router) *router.Router {
	if rt == nil {
		panic("proxy: Swap(nil)")
	}
	old := p.router.Swap(rt)
	p.rr.retain(rt.BackendNames())
	p.metrics.swaps.Inc()
	return old
}

// Router returns the router in use, or nil before the first Swap.
func (p *Proxy) Router() *router.Router { return p.router.Load() }

// upstreamKey carries the chosen endpoint from ServeHTTP to rewrite and
// upstreamError through the request context.
type upstreamKey struct{}

type upstream struct {
	backend string
	addr    string
}

// ServeHTTP routes and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusRecorder{ResponseWriter: w}
	// Deferred so that a request aborted with panic(http.ErrAbortHandler)
	// (a broken backend body) is counted too.
	defer func() { p.metrics.observe(sw.status()) }()

	rt := p.router.Load()
	if rt == nil {
		reply(sw, http.StatusServiceUnavailable, "no configuration loaded yet")
		return
	}
	_, backend := rt.Match(req.Host, req.URL.Path)
	if backend == nil {
		reply(sw, http.StatusNotFound, "no route for this host and path")
		return
	}
	addr := p.rr.pick(backend)
	if addr == "" {
		reply(sw, http.StatusServiceUnavailable, "no ready endpoints for this route")
		return
	}
	ctx := context.WithValue(req.Context(), upstreamKey{}, upstream{backend: backend.Name, addr: addr})
	p.rp.ServeHTTP(sw, req.WithContext(ctx))
}

// rewrite points the outgoing request at the chosen endpoint. The inbound
// Host header is kept (backends see the name the client asked for);
// X-Forwarded-For/-Host/-Proto are set from this hop only, since
// ReverseProxy removes the client's own X-Forwarded-* before Rewrite runs.
func rewrite(pr *httputil.ProxyRequest) {
	up := pr.In.Context().Value(upstreamKey{}).(upstream)
	pr.SetURL(&url.URL{Scheme: "http", Host: up.addr})
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

// upstreamError answers when the request could not be forwarded: 504 on a
// timeout, 502 otherwise (refused or reset connection, bad response).
func (p *Proxy) upstreamError(w http.ResponseWriter, req *http.Request, err error) {
	up, _ := req.Context().Value(upstreamKey{}).(upstream)
	if req.Context().Err() != nil && errors.Is(err, context.Canceled) {
		p.log.Debug("Client closed request", "backend", up.backend, "endpoint", up.addr, "err", err)
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
	code := http.StatusBadGateway
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		code = http.StatusGatewayTimeout
	}
	p.log.Warn("Upstream request failed", "backend", up.backend, "endpoint", up.addr,
		"host", req.Host, "path", req.URL.Path, "status", code, "err", err)
	reply(w, code, http.StatusText(code))
}

// reply writes a small plain-text response generated by the proxy itself.
func reply(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Server", ServerHeader)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers; allocating one per
// request costs about a third of the throughput (research/perf-peers.md).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
