package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// maxDiscard bounds how much of an intercepted upstream body is read and
// thrown away; past it the upstream connection is closed instead.
const maxDiscard = 64 << 10

// errDiscarded stops the copy of an intercepted body past maxDiscard.
var errDiscarded = errors.New("intercepted response body discarded")

// errorPages is the client's ResponseWriter for a route with
// custom-http-errors. While the status is not written it passes nothing
// through; a status in the route's codes is answered by the error backend
// instead (its body, the original status), whatever produced it: the
// upstream, or the gateway itself (502, 503, 504, 403 ...). The upstream's
// own body is then discarded.
type errorPages struct {
	http.ResponseWriter
	p       *Proxy
	st      *state
	req     *http.Request
	d       *router.Decision
	f       *forwarded
	ce      *snapshot.CustomErrors
	backend *snapshot.Backend
	decided bool
	caught  bool
	dropped int
}

// errorPages returns a.w wrapped for the route's custom-http-errors, or
// a.w itself when the route has none, no error backend exists, or the
// request is an upgrade. A request without a valid X-Request-Id gets one
// here, so the upstream, the error backend and the access log share it.
func (p *Proxy) errorPages(st *state, d *router.Decision, a *attempt) http.ResponseWriter {
	req, w := a.req, a.w
	if d.Route == nil || d.Route.CustomErrors == nil || isUpgrade(req) {
		return w
	}
	ce := d.Route.CustomErrors
	b := ce.Backend
	if b == nil {
		b = st.rt.DefaultBackend()
	}
	if b == nil {
		return w
	}
	if rid := req.Header[hdrXRequestID]; len(rid) != 1 || !validRequestID(rid[0]) {
		id := string(p.requestIDs.appendNext(nil))
		req.Header[hdrXRequestID] = []string{id}
		if a.log != nil {
			a.log.requestID = id
		}
	}
	// Copies of the decision and client facts: pointers to the caller's
	// would move them to the heap for every request.
	dc := *d
	return &errorPages{ResponseWriter: w, p: p, st: st, req: req, d: &dc, f: a.forwardedCopy(), ce: ce, backend: b}
}

func (e *errorPages) WriteHeader(code int) {
	if e.decided {
		if !e.caught {
			e.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if code < 200 {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.decided = true
	if !e.ce.Intercepts(code) {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.caught = true
	e.serve(code)
}

func (e *errorPages) Write(b []byte) (int, error) {
	if !e.decided {
		e.WriteHeader(http.StatusOK)
	}
	if !e.caught {
		return e.ResponseWriter.Write(b)
	}
	if e.dropped += len(b); e.dropped > maxDiscard {
		return 0, errDiscarded
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController reach Flush on the client's writer.
func (e *errorPages) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// serve answers the client from the error backend with status code, as
// ingress-nginx's custom error location: GET / with the X-Code family of
// headers. When the error backend cannot answer, a plain response with
// code is sent instead.
func (e *errorPages) serve(code int) {
	p, w := e.p, e.ResponseWriter
	clear(w.Header()) // the upstream's headers describe a body the client will not get
	t := p.target(e.st, &router.Decision{Backend: e.backend})
	i, _ := t.pick(e.req)
	if i < 0 {
		p.reply(w, code, http.StatusText(code))
		return
	}
	method := http.MethodGet
	if e.req.Method == http.MethodHead {
		method = http.MethodHead
	}
	ns, ing, _ := strings.Cut(e.d.Route.Source, "/")
	svc, port := serviceOf(e.d.Backend.Name)
	h := http.Header{
		"X-Code":         {strconv.Itoa(code)},
		"X-Format":       {e.req.Header.Get("Accept")},
		"X-Original-Uri": {e.req.RequestURI},
		"X-Namespace":    {ns},
		"X-Ingress-Name": {ing},
		"X-Service-Name": {svc},
		"X-Service-Port": {port},
	}
	h[hdrXRequestID] = e.req.Header[hdrXRequestID] // set by errorPages

	out := &http.Request{Method: method, URL: &url.URL{Path: "/"}, Header: h, Host: e.req.Host, RemoteAddr: e.req.RemoteAddr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, RequestURI: "/"}
	out = out.WithContext(e.req.Context())
	a := attempt{p: p, w: &fixedStatus{ResponseWriter: w, code: code}, req: out, uri: "/", f: *e.f, host: e.req.Host,
		readTimeout: p.readTimeout, sendTimeout: p.sendTimeout}
	ep := t.pool.Endpoints[i]
	ep.Acquire()
	_, err := a.run(t.hosts[i])
	ep.Release()
	var fl *failure
	switch {
	case err == nil:
		ep.ReportSuccess()
	case errors.As(err, &fl):
		if fl.status == 0 {
			ep.ReportFailure(time.Now())
		}
		p.log.Warn("Error page backend failed", "backend", e.backend.Name, "endpoint", ep.Addr, "status", code, "err", err)
		p.reply(w, code, http.StatusText(code))
	default: // aborted half-way: the client sees a truncated page
		ep.ReportFailure(time.Now())
	}
}

// serviceOf splits a backend name "namespace/service:port".
func serviceOf(name string) (svc, port string) {
	_, rest, _ := strings.Cut(name, "/")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return rest[:i], rest[i+1:]
	}
	return rest, ""
}

// fixedStatus writes code whatever status the error backend answers with.
type fixedStatus struct {
	http.ResponseWriter
	code int
}

func (f *fixedStatus) WriteHeader(int) { f.ResponseWriter.WriteHeader(f.code) }

// Unwrap lets http.ResponseController reach Flush on the client's writer.
func (f *fixedStatus) Unwrap() http.ResponseWriter { return f.ResponseWriter }
