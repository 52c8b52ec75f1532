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

// Package proxy is gatewaypod's HTTP data plane: an http.Handler that
// normalises the request path, routes it with the current router.Router,
// picks an endpoint of the matched backend with a balancer.Policy and
// forwards the request over HTTP/1.1 keep-alive.
//
// The router is swapped atomically (Swap) and loaded once per request, so a
// request sees one configuration from start to end and a swap never drops a
// request, a keep-alive connection or an upgraded (WebSocket) connection.
// Everything that must survive a swap lives in the Proxy, not in the
// router: the upstream connection pools and the per-endpoint balancer state
// (in-flight counts, passive health, round-robin positions), all keyed by
// address or backend name.
//
// The hot path does not use httputil.ReverseProxy: the stdlib Transport
// runs two goroutines per upstream connection and hands every request
// between them, which costs about as much CPU as the proxying itself. Here a
// request is written and its response read on the handler's goroutine, on a
// pooled connection, with headers written straight to the connection's
// buffer. Upgrade requests (WebSocket) go through httputil.ReverseProxy.
//
// HTTPS routes use the same HTTP/1.1 path on TLS connections (pooled per
// endpoint and TLS configuration); GRPC and GRPCS routes go through
// httputil.ReverseProxy with a pooled HTTP/2 transport (h2c prior knowledge,
// or TLS with ALPN h2), streaming both ways and relaying trailers. See
// upstreamtls.go and grpc.go.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/router"
)

// ServerHeader is the Server header of every response the proxy generates
// itself (400, 404, 502, 503 ...), so they can be told apart from a backend's.
const ServerHeader = "portico"

// StatusClientClosedRequest is recorded (as nginx does) when the client went
// away before the backend answered; nobody receives it.
const StatusClientClosedRequest = 499

// Defaults applied to zero Options fields.
const (
	DefaultConnectTimeout          = 5 * time.Second
	DefaultReadTimeout             = 60 * time.Second
	DefaultSendTimeout             = 60 * time.Second
	DefaultIdleConnTimeout         = 90 * time.Second
	DefaultMaxIdleConnsPerEndpoint = 1024
	DefaultRetries                 = 1
	// endpointStateTTL is how long the state of an endpoint no snapshot
	// uses any more is kept (an endpoint that comes back within it keeps
	// its ejection and connections).
	endpointStateTTL = 10 * time.Minute
)

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Registerer receives the proxy's metrics. Nil registers nothing; the
	// process passes its own registry (no global state).
	Registerer prometheus.Registerer
	// Logger receives upstream errors. Nil discards them.
	Logger *slog.Logger
	// Transport forwards Upgrade (WebSocket) requests, which go through
	// httputil.ReverseProxy. Nil means NewTransport().
	Transport http.RoundTripper
	// TrustedProxies are the peers whose X-Forwarded-For/-Host/-Proto/-Port
	// and X-Real-IP are believed and extended. From any other peer those
	// headers are replaced, so a client cannot spoof its address.
	TrustedProxies []netip.Prefix
	// ConnectTimeout bounds the TCP connect to an endpoint (default 5 s).
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait for the response header and between two
	// reads of the response body (default 60 s; nginx proxy_read_timeout).
	ReadTimeout time.Duration
	// SendTimeout bounds each write of a request body to the endpoint
	// (default 60 s; nginx proxy_send_timeout).
	SendTimeout time.Duration
	// IdleConnTimeout closes upstream keep-alive connections idle for longer
	// (default 90 s).
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerEndpoint caps the idle keep-alive connections kept per
	// endpoint (default 1024).
	MaxIdleConnsPerEndpoint int
	// MaxBodyBytes refuses request bodies larger than this with 413; 0 means
	// no limit.
	MaxBodyBytes int64
	// Retries is how many other endpoints an idempotent request without a
	// body is sent to when the connection to the chosen one fails (default 1;
	// negative disables retries).
	Retries int
	// PassiveHealth ejects failing endpoints; nil means
	// balancer.DefaultPassiveHealth, a zero value disables it.
	PassiveHealth *balancer.PassiveHealth
	// AccessLog configures the JSON access log; the zero value is off and
	// costs one nil check per request.
	AccessLog AccessLogOptions
}

// Proxy is an http.Handler that forwards requests according to the router
// most recently given to Swap. Until the first Swap it answers 503.
type Proxy struct {
	state    atomic.Pointer[state]
	registry *balancer.Registry
	policy   balancer.Policy
	pools    *connPools
	upgrade  *httputil.ReverseProxy
	http2    *httputil.ReverseProxy // GRPC and GRPCS routes
	// upstreams are the TLS / HTTP/2 configurations of non-HTTP routes.
	upstreams *upstreams
	buffers   *bufferPool
	trust     trust
	log       *slog.Logger
	metrics   *metrics

	readTimeout  time.Duration
	sendTimeout  time.Duration
	maxBodyBytes int64
	retries      int
	requestIDs   *requestIDs
	access       *accessLog // nil: access log off
	limits       *limiters  // per-route, per-client rate and connection limits
	health       *health    // active health checks and endpoint metrics
	jwt          *jwtKeys   // JWT verification keys from the instance Secret

	stopJanitor chan struct{}
	closeOnce   sync.Once

	// Client certificates (auth-tls-*): where CA bundles come from (see
	// SetClientCAs), and the verifications per TLS connection.
	clientCAs ClientCAs
	verified  verifyCache
}

// state is one router with the balancing targets built for it on demand.
type state struct {
	rt      *router.Router
	targets sync.Map // *snapshot.Backend -> *target
	limits  sync.Map // *snapshot.Route -> *limitRoute
}

// New returns a Proxy with no router. It fails only if its metrics cannot
// be registered (for example, registered twice on one registry). Call Close
// when done with it.
func New(opts Options) (*Proxy, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	access, err := newAccessLog(opts.AccessLog, m.accessDropped)
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
	ph := balancer.DefaultPassiveHealth
	if opts.PassiveHealth != nil {
		ph = *opts.PassiveHealth
	}
	def := func(d, v time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	retries := opts.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	maxIdle := opts.MaxIdleConnsPerEndpoint
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConnsPerEndpoint
	}
	p := &Proxy{
		registry: balancer.NewRegistry(ph),
		policy:   balancer.RoundRobin{},
		pools: &connPools{
			dialer:      net.Dialer{Timeout: def(DefaultConnectTimeout, opts.ConnectTimeout), KeepAlive: 30 * time.Second},
			maxIdle:     maxIdle,
			idleTimeout: def(DefaultIdleConnTimeout, opts.IdleConnTimeout),
			hosts:       map[string]*upstreamHost{},
		},
		buffers:      newBufferPool(),
		trust:        trust{prefixes: opts.TrustedProxies},
		log:          log,
		metrics:      m,
		readTimeout:  def(DefaultReadTimeout, opts.ReadTimeout),
		sendTimeout:  def(DefaultSendTimeout, opts.SendTimeout),
		maxBodyBytes: opts.MaxBodyBytes,
		retries:      max(retries, 0),
		requestIDs:   newRequestIDs(),
		access:       access,
		limits:       newLimiters(),
		stopJanitor:  make(chan struct{}),
	}
	p.upstreams = newUpstreams(&p.pools.dialer, p.pools.idleTimeout, p.readTimeout, log)
	p.upgrade = &httputil.ReverseProxy{
		Rewrite:      p.rewriteUpgrade,
		Transport:    routeTransport{def: transport},
		BufferPool:   p.buffers,
		ErrorHandler: p.upgradeError,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	p.http2 = p.newHTTP2Proxy(routeTransport{def: transport})
	p.health = newHealth(p)
	p.jwt = newJWTKeys()
	m.ejected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricEjectedEndpoints,
		Help: "Endpoints currently out of rotation: ejected by passive health or failing an active health check.",
	}, func() float64 { return float64(p.registry.Ejected()) })
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.ejected, p.health, p.jwt.rejected, p.upstreams.errs} {
			if err := opts.Registerer.Register(c); err != nil {
				if access != nil {
					access.close()
				}
				return nil, err
			}
		}
	}
	go p.janitor()
	return p, nil
}

// Close stops the background sweep, closes idle upstream connections and
// writes out the queued access log lines. Requests in flight are not
// affected (their access log lines may be dropped and counted).
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.stopJanitor)
		p.health.close()
		p.pools.closeIdle()
		p.upstreams.closeIdle()
		if p.access != nil {
			p.access.close()
		}
	})
}

// janitor closes upstream connections idle for too long even when no
// traffic would notice, and drops idle per-client limit state.
func (p *Proxy) janitor() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stopJanitor:
			return
		case <-t.C:
			p.pools.sweep(nil)
			p.limits.sweep()
		}
	}
}

// NewTransport returns the transport used for Upgrade requests when
// Options.Transport is nil: plain HTTP/1.1, no environment proxy, no
// transparent compression.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   DefaultConnectTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       DefaultIdleConnTimeout,
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
	old := p.state.Swap(&state{rt: rt})
	p.metrics.swapped(rt)
	p.registry.Sweep(endpointStateTTL, rt.BackendNames())
	p.pools.sweep(func(addr string, ep *balancer.Endpoint) bool { return p.registry.Has(addr, ep) })
	p.upstreams.sweep(rt.BackendNames())
	p.health.sync()
	if old == nil {
		return nil
	}
	return old.rt
}

// SetTLSData gives the proxy the instance TLS Secret's data, which holds
// the CA bundles and client certificates of HTTPS and GRPCS routes (see
// snapshot.UpstreamTLS). Routes whose material is missing or does not match
// its pin keep the material loaded before, or answer 502 when there is
// none; they are never served without TLS or verification.
func (p *Proxy) SetTLSData(data map[string][]byte) { p.upstreams.setData(data) }

// Router returns the router in use, or nil before the first Swap.
func (p *Proxy) Router() *router.Router {
	if st := p.state.Load(); st != nil {
		return st.rt
	}
	return nil
}

// ServeHTTP routes and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	if needsCloseAfterReply(req) {
		w = &closeAfterReply{ResponseWriter: w}
	}
	var e *accessEntry
	if p.access != nil {
		if e = p.access.begin(w, req, start); e != nil {
			w = &e.w
		}
	}
	code, t, abort := p.serve(w, req, e, start)
	p.metrics.observe(code)
	obs := &p.metrics.edge
	if t != nil {
		obs = &t.duration
	}
	elapsed := time.Since(start)
	obs[codeClass(code)].Observe(elapsed.Seconds())
	if e != nil {
		p.access.finish(e, req, code, elapsed)
	}
	if abort {
		panic(http.ErrAbortHandler)
	}
}

// serve handles one request and returns the status sent to the client,
// the target it was meant for (nil when answered before one was chosen),
// and whether the client connection must be cut. e, when not nil, collects
// what the access log reports.
func (p *Proxy) serve(w http.ResponseWriter, req *http.Request, e *accessEntry, start time.Time) (int, *target, bool) {
	st := p.state.Load()
	if st == nil {
		return p.reply(w, http.StatusServiceUnavailable, "no configuration loaded yet"), nil, false
	}
	fwdPath, match, err := normalizePath(requestPath(req))
	if err != nil {
		return p.reply(w, http.StatusBadRequest, "bad request path"), nil, false
	}
	// Decide matches on URL.Path and builds redirects from RequestURI.
	req.URL.Path, req.URL.RawPath = match, ""
	if fwdPath != match {
		req.URL.RawPath = fwdPath
	}
	d := st.rt.Decide(req)
	if code, done := p.clientAuth(w, req, st, &d); done {
		return code, nil, false
	}
	if d.Redirect != nil {
		return p.redirect(w, d.Redirect), nil, false
	}
	if d.Backend == nil {
		return p.reply(w, http.StatusNotFound, "no route for this host and path"), nil, false
	}
	t := p.target(st, &d)
	a := attempt{p: p, w: w, req: req, f: p.trust.forwarded(req), host: req.Host, prefix: d.ForwardedPrefix,
		connectTimeout: 0, readTimeout: p.readTimeout, sendTimeout: p.sendTimeout, log: e, start: start}
	if ew := p.errorPages(st, &d, &a); ew != w {
		w, a.w = ew, ew // custom-http-errors
	}
	if e != nil {
		e.remote, e.backend = a.f.realIP, t.pool.Name
	}
	maxBody, retries := p.maxBodyBytes, p.retries
	if r := d.Route; r != nil {
		if r.Access != nil && !d.Allowed(clientAddr(&a.f)) {
			return p.reply(w, http.StatusForbidden, "forbidden"), t, false
		}
		if r.CORS != nil {
			if origin := req.Header.Get("Origin"); origin != "" {
				if v, ok := d.AllowOrigin(origin); ok {
					a.cors = &corsReply{c: r.CORS, origin: v} // allocated for CORS requests only
					if isPreflight(req) {
						return p.preflight(w, req, a.cors), t, false
					}
				}
			}
		}
		if r.JWT != nil {
			if code := p.checkJWT(w, req, r.JWT); code != 0 {
				return code, t, false
			}
		}
		if l := r.Limits; l != nil {
			if l.MaxBodyBytes != nil {
				maxBody = *l.MaxBodyBytes
			}
			if hasRequestLimits(l) {
				ca := clientAddr(&a.f).Unmap()
				lr, code := p.applyLimits(w, st, r, ca)
				if code != 0 {
					return code, t, false
				}
				if lr != nil {
					defer lr.release(ca) // also when the upgrade or the copy panics
				}
			}
		}
		if u := r.Upstream; u != nil {
			if u.Host != "" {
				a.host = u.Host
			}
			ms := func(v int, def time.Duration) time.Duration {
				if v > 0 {
					return time.Duration(v) * time.Millisecond
				}
				return def
			}
			a.connectTimeout = ms(u.ConnectTimeoutMs, 0)
			a.readTimeout = ms(u.ReadTimeoutMs, a.readTimeout)
			a.sendTimeout = ms(u.SendTimeoutMs, a.sendTimeout)
			if u.Tries > 0 {
				retries = u.Tries - 1 // nginx counts the first try
			}
		}
	}
	if t.role != nil {
		t.role.Inc()
	}
	if maxBody > 0 && req.ContentLength > maxBody {
		return p.reply(w, http.StatusRequestEntityTooLarge, "request body too large"), t, false
	}
	i, setCookie := t.pick(req)
	if i < 0 {
		if t.up != nil && t.up.http2() && isGRPC(req) {
			return p.grpcReply(w, http.StatusServiceUnavailable, "no ready endpoints for this route"), t, false
		}
		return p.reply(w, http.StatusServiceUnavailable, "no ready endpoints for this route"), t, false
	}
	a.setCookie = setCookie
	if isUpgrade(req) {
		// Upgraded connections last long: they are counted, not timed.
		return p.serveUpgrade(w, req, t, i, &d, fwdPath, &a), nil, false
	}
	if maxBody > 0 && req.Body != nil && req.Body != http.NoBody {
		mw := w
		if e != nil {
			mw = e.w.ResponseWriter // net/http's own writer: it closes the connection after a 413
		} else if ep, ok := w.(*errorPages); ok {
			mw = ep.ResponseWriter
		}
		req.Body = http.MaxBytesReader(mw, req.Body, maxBody)
	}
	if t.up != nil && t.up.http2() {
		code, abort := p.serveHTTP2(w, req, t, i, &d, fwdPath, &a)
		return code, t, abort
	}
	a.uri, a.query = upstreamPath(&d, fwdPath), d.RawQuery
	a.hasBody = req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	for tries := 0; ; tries++ {
		ep, h := t.pool.Endpoints[i], t.hosts[i]
		if e != nil {
			e.endpoint = ep.Addr
		}
		ep.Acquire()
		code, err := a.run(h)
		ep.Release()
		a.start = time.Time{} // a retry, or what follows, reads the clock
		if err == nil {
			if code >= 500 {
				ep.ReportFailure(time.Now())
			} else {
				ep.ReportSuccess()
			}
			return code, t, false
		}
		if err == errAborted {
			ep.ReportFailure(time.Now())
			return code, t, true
		}
		var fl *failure
		if !errors.As(err, &fl) {
			fl = &failure{err: err}
		}
		if fl.status == 0 {
			ep.ReportFailure(time.Now())
		}
		if fl.status == 0 && fl.replayable && tries < retries && idempotent(req.Method) && !a.hasBody {
			if j := t.pool.Next(i); j >= 0 {
				p.log.Debug("Retrying on another endpoint", "backend", t.pool.Name, "failed", ep.Addr, "next", t.pool.Endpoints[j].Addr, "err", err)
				i = j
				continue
			}
		}
		return p.upstreamError(w, req, t.pool.Name, ep.Addr, fl), t, false
	}
}

// requestPath is the escaped path the client sent.
func requestPath(req *http.Request) string {
	uri := req.RequestURI
	if uri == "" || uri[0] != '/' { // absolute-form, or a request not from net/http's server
		return req.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// idempotent methods may be sent twice (RFC 9110 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func isUpgrade(req *http.Request) bool {
	return len(req.Header["Upgrade"]) > 0 && connectionListed(req.Header[hdrConnection], "upgrade")
}

// upstreamError answers when the request could not be forwarded: 504 on a
// timeout, 502 otherwise; 413/400/499 when the client is the cause.
func (p *Proxy) upstreamError(w http.ResponseWriter, req *http.Request, backend, addr string, f *failure) int {
	code := f.status
	switch {
	case code == StatusClientClosedRequest:
		p.log.Debug("Client closed request", "backend", backend, "endpoint", addr, "err", f.err)
		w.WriteHeader(code)
		return code
	case code != 0:
	case isTimeout(f.err):
		code = http.StatusGatewayTimeout
	default:
		code = http.StatusBadGateway
	}
	if code >= 500 {
		p.log.Warn("Upstream request failed", "backend", backend, "endpoint", addr,
			"host", req.Host, "path", req.URL.Path, "status", code, "err", f.err)
	}
	return p.reply(w, code, http.StatusText(code))
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// reply writes a small plain-text response generated by the proxy itself
// and returns code.
func (p *Proxy) reply(w http.ResponseWriter, code int, msg string) int {
	h := w.Header()
	h.Set("Server", ServerHeader)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
	return code
}

// upgradeKey carries the upgrade's endpoint and paths to rewriteUpgrade.
type upgradeKey struct{}

type upgradeTarget struct {
	addr        string
	backend     string
	path, raw   string
	query       string
	host        string
	prefix      string
	f           *forwarded
	ep          *balancer.Endpoint
	status      *statusRecorder
	failureSeen bool
	log         *accessEntry // nil unless access logged
	// up is the route's TLS / HTTP/2 configuration; nil for plain HTTP.
	up *upstreamConfig
	// cors and setCookie decorate responses of HTTP/2 routes.
	cors      *corsReply
	setCookie string
	// stream times a request of an HTTP/2 route; nil for upgrades.
	stream *h2Stream
}

// serveUpgrade forwards a protocol upgrade (WebSocket) with
// httputil.ReverseProxy, which hijacks both connections after the 101 and
// copies bytes until either side closes. The upgraded connection does not
// depend on the router, so swaps leave it alone.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, req *http.Request, t *target, i int, d *router.Decision, fwdPath string, a *attempt) int {
	ep := t.pool.Endpoints[i]
	sw := &statusRecorder{ResponseWriter: w}
	ut := &upgradeTarget{addr: ep.Addr, backend: t.pool.Name, path: d.Path, raw: fwdPath, query: d.RawQuery,
		host: a.host, prefix: a.prefix, f: a.forwardedCopy(), ep: ep, status: sw, log: a.log, up: t.up}
	if a.log != nil {
		a.log.endpoint = ep.Addr
	}
	if d.Rewritten {
		ut.raw = d.Path
	}
	ep.Acquire()
	defer ep.Release()
	p.upgrade.ServeHTTP(sw, req.WithContext(context.WithValue(req.Context(), upgradeKey{}, ut)))
	if !ut.failureSeen {
		ep.ReportSuccess()
	}
	return sw.status()
}

func (p *Proxy) rewriteUpgrade(pr *httputil.ProxyRequest) {
	ut := pr.In.Context().Value(upgradeKey{}).(*upgradeTarget)
	scheme := "http"
	if ut.up != nil {
		scheme = ut.up.scheme()
	}
	pr.Out.URL = &url.URL{Scheme: scheme, Host: ut.addr, Path: ut.path, RawQuery: ut.query}
	if ut.raw != ut.path {
		pr.Out.URL.RawPath = ut.raw
	}
	pr.Out.Host = ut.host
	ut.f.setHeaders(pr.In, pr.Out.Header)
	if ut.prefix != "" {
		pr.Out.Header.Set(hdrXForwardedPrefix, ut.prefix)
	}
	if rid := pr.In.Header.Get(hdrXRequestID); !validRequestID(rid) {
		id := string(p.requestIDs.appendNext(nil))
		pr.Out.Header.Set(hdrXRequestID, id)
		if ut.log != nil {
			ut.log.requestID = id
		}
	}
}

func (p *Proxy) upgradeError(w http.ResponseWriter, req *http.Request, err error) {
	ut := req.Context().Value(upgradeKey{}).(*upgradeTarget)
	ut.failureSeen = true
	f := &failure{err: err}
	if req.Context().Err() != nil {
		f.status = StatusClientClosedRequest
	} else {
		ut.ep.ReportFailure(time.Now())
	}
	// serveUpgrade counts the request with the status the recorder saw.
	code := f.status
	if code == 0 {
		code = http.StatusBadGateway
		if isTimeout(err) {
			code = http.StatusGatewayTimeout
		}
		p.log.Warn("Upstream upgrade failed", "backend", ut.backend, "endpoint", ut.addr, "status", code, "err", err)
	}
	h := w.Header()
	h.Set("Server", ServerHeader)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, http.StatusText(code)+"\n")
}

// bufferPool reuses 32 KiB copy buffers; allocating one per request costs
// about a third of the throughput (research/perf-peers.md). It also
// implements httputil.BufferPool for the upgrade path.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

// getBuf and putBuf keep the *[]byte, so pooling allocates nothing.
func (b *bufferPool) getBuf() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) putBuf(x *[]byte) { b.p.Put(x) }

// Get implements httputil.BufferPool.
func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

// Put implements httputil.BufferPool.
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
