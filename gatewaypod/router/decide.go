package router

import (
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// ACMEChallengePrefix is never redirected to HTTPS, so HTTP-01 challenges
// pass (ingress-nginx's no-tls-redirect-locations default).
const ACMEChallengePrefix = "/.well-known/acme-challenge"

// Decision is everything the proxy needs to handle one request, decided by
// pure code from the request line, headers and cookies. Exactly one of
// these holds: Redirect != nil (answer with it), Backend != nil (proxy to
// it), or neither (answer 404).
type Decision struct {
	// Host is the normalized request host (lower-case, no port, no final dot).
	Host string
	// Route is the matched route; nil for default backends, redirecting
	// hosts, and no match. Its policy fields (CORS, Access, Limits,
	// Upstream, ...) apply to the request, canary or not: a canary inherits
	// its primary's policies, except the balancer.
	Route *snapshot.Route
	// Backend receives the request; nil with Redirect or for 404.
	Backend *snapshot.Backend
	// Canary is the canary that took the request, nil for the primary.
	Canary *snapshot.Canary
	// Balancer is the effective balancer: the route's, or the canary's own
	// when a canary took the request; nil means round robin.
	Balancer *snapshot.Balancer
	// Path is the path to send upstream, and RawQuery its query: the
	// request's own, or the result of the route's Rewrite. The proxy sets
	// Out.URL.Path = Path and clears RawPath when Rewritten.
	Path     string
	RawQuery string
	// Rewritten is true when Rewrite changed the path; ForwardedPrefix is
	// then the X-Forwarded-Prefix value to send ("" for none).
	Rewritten       bool
	ForwardedPrefix string
	// Redirect, when set, is the answer.
	Redirect *RedirectDecision
	// ClientAuth is the client-certificate verification of the selected
	// virtual host (auth-tls-*); nil when it has none. The proxy applies it
	// before Redirect and Backend.
	ClientAuth *snapshot.ClientAuth
	// MatchCN is ClientAuth.MatchCN compiled; nil when it has none.
	MatchCN *regexp.Regexp

	route *route
}

// RedirectDecision is a redirect answer.
type RedirectDecision struct {
	// Code is the status code (301, 302, 307, 308, ...).
	Code int
	// Location is the absolute URL of the Location header.
	Location string
}

// Decide routes r: it picks the virtual host and route (see the package
// comment), applies host and route redirects (from-to-www, app-root,
// permanent/temporal, then ssl-redirect for plain-HTTP requests), picks a
// canary, and computes the upstream path. A request is HTTPS when r.TLS is
// set; a proxy behind a TLS-terminating balancer sets r.TLS (or strips
// Redirect.SSL) itself.
func (rt *Router) Decide(r *http.Request) Decision {
	d := Decision{Host: normalizeHost(r.Host), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	vh := rt.host(d.Host)
	if vh == nil {
		d.Backend = rt.defaultBackend
		return d
	}
	d.ClientAuth, d.MatchCN = vh.clientAuth, vh.matchCN
	if vh.redirectHost != "" {
		d.Redirect = &RedirectDecision{Code: http.StatusPermanentRedirect, Location: scheme + "://" + vh.redirectHost + r.URL.RequestURI()}
		return d
	}
	rr := vh.match(d.Path)
	if rr == nil {
		d.Backend = vh.def
		if d.Backend == nil {
			d.Backend = rt.defaultBackend
		}
		return d
	}
	d.route, d.Route = rr, rr.r
	if rd := rr.r.Redirect; rd != nil {
		switch {
		case rd.AppRoot != "" && d.Path == "/":
			d.Redirect = &RedirectDecision{Code: http.StatusFound, Location: scheme + "://" + r.Host + rd.AppRoot}
			return d
		case rd.URL != "":
			d.Redirect = &RedirectDecision{Code: rd.Code, Location: rd.URL}
			return d
		case rd.SSL && r.TLS == nil && !strings.HasPrefix(d.Path, ACMEChallengePrefix):
			d.Redirect = &RedirectDecision{Code: http.StatusPermanentRedirect, Location: "https://" + d.Host + r.URL.RequestURI()}
			return d
		}
	}
	d.Backend, d.Balancer = &rr.r.Backend, rr.r.Balancer
	if i := rt.pickCanary(rr, r); i >= 0 {
		c := &rr.r.Canaries[i]
		// A canary keeps its own balancer annotations (ingress-nginx).
		d.Canary, d.Backend, d.Balancer = c, &c.Backend, c.Balancer
	}
	if rw := rr.r.Rewrite; rw != nil && rr.rewrite != nil {
		if m := rr.rewrite.FindStringSubmatchIndex(d.Path); m != nil {
			target := expand(rw.Target, d.Path, m)
			path, query, hasQuery := strings.Cut(target, "?")
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			d.Path, d.Rewritten, d.ForwardedPrefix = path, true, rw.ForwardedPrefix
			// nginx: new arguments come first and the original ones are
			// appended, unless the target ends with '?'.
			if hasQuery {
				switch {
				case strings.HasSuffix(target, "?"):
					d.RawQuery = strings.TrimSuffix(query, "?")
				case d.RawQuery != "" && query != "":
					d.RawQuery = query + "&" + d.RawQuery
				case query != "":
					d.RawQuery = query
				}
			}
		}
	}
	return d
}

// pickCanary returns the index of the canary that takes r, or -1 for the
// primary. ingress-nginx's order: the header rules, then the cookie rules,
// then one weighted draw; a header or cookie "never" ends on the primary.
func (rt *Router) pickCanary(rr *route, r *http.Request) int {
	cs := rr.r.Canaries
	if len(cs) == 0 {
		return -1
	}
	for i := range cs {
		c := &cs[i]
		if c.Header == "" {
			continue
		}
		v, ok := headerValue(r.Header, c.Header)
		if !ok {
			continue
		}
		switch {
		case len(c.HeaderValues) > 0:
			if slices.Contains(c.HeaderValues, v) {
				return i
			}
		case rr.canaries[i] != nil:
			if rr.canaries[i].MatchString(v) {
				return i
			}
		case v == "always":
			return i
		case v == "never":
			return -1
		}
	}
	for i := range cs {
		c := &cs[i]
		if c.Cookie == "" {
			continue
		}
		ck, err := r.Cookie(c.Cookie)
		if err != nil {
			continue
		}
		switch {
		case len(c.CookieValues) > 0:
			if slices.Contains(c.CookieValues, ck.Value) {
				return i
			}
		case ck.Value == "always":
			return i
		case ck.Value == "never":
			return -1
		}
	}
	total, any := cs[0].EffectiveWeightTotal(), false
	for i := range cs {
		any = any || cs[i].Weight > 0
	}
	if !any {
		return -1
	}
	// nginx: math.random(total) <= weight, i.e. a draw in [1, total].
	x, sum := rt.intn(total)+1, 0
	for i := range cs {
		sum += cs[i].Weight
		if x <= sum {
			return i
		}
	}
	return -1
}

// headerValue returns the first value of a header, as nginx's $http_<name>.
func headerValue(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// expand replaces $0..$9 and ${n} in target with the submatches m of src,
// as nginx does ("$1abc" is group 1 then "abc"); an unset group is empty
// and any other '$' is literal.
func expand(target, src string, m []int) string {
	if !strings.Contains(target, "$") {
		return target
	}
	var b strings.Builder
	group := func(n int) {
		if 2*n+1 < len(m) && m[2*n] >= 0 {
			b.WriteString(src[m[2*n]:m[2*n+1]])
		}
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c != '$' || i+1 == len(target) {
			b.WriteByte(c)
			continue
		}
		next := target[i+1]
		switch {
		case '0' <= next && next <= '9':
			group(int(next - '0'))
			i++
		case next == '{':
			end := strings.IndexByte(target[i:], '}')
			n, ok := 0, end > 2
			for _, d := range target[i+2 : max(i+2, i+end)] {
				if d < '0' || d > '9' || n > 99 {
					ok = false
					break
				}
				n = n*10 + int(d-'0')
			}
			if !ok {
				b.WriteByte(c)
				continue
			}
			group(n)
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Allowed reports whether a client address may use the route: a denied
// prefix refuses it, and a non-empty allow list must contain it. Requests
// without a route are always allowed.
func (d *Decision) Allowed(addr netip.Addr) bool {
	if d.route == nil {
		return true
	}
	addr = addr.Unmap()
	for _, p := range d.route.deny {
		if p.Contains(addr) {
			return false
		}
	}
	if len(d.route.allow) == 0 {
		return true
	}
	for _, p := range d.route.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowOrigin returns the Access-Control-Allow-Origin value for a request
// Origin under the route's CORS policy, and false when the origin is not
// allowed (or the route has no CORS policy). "*" is answered as "*" unless
// credentials are allowed, where the origin is echoed (browsers refuse "*"
// with credentials).
func (d *Decision) AllowOrigin(origin string) (string, bool) {
	if d.Route == nil || d.Route.CORS == nil || origin == "" {
		return "", false
	}
	c := d.Route.CORS
	for _, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return origin, true
			}
			return "*", true
		}
		if originMatches(o, origin) {
			return origin, true
		}
	}
	return "", false
}

// originMatches compares "scheme://host[:port]" origins; the pattern's host
// may be "*.suffix" for exactly one label. Hosts compare case-insensitively.
func originMatches(pattern, origin string) bool {
	ps, ph, ok1 := strings.Cut(pattern, "://")
	os, oh, ok2 := strings.Cut(origin, "://")
	if !ok1 || !ok2 || !strings.EqualFold(ps, os) {
		return false
	}
	ph, oh = strings.ToLower(ph), strings.ToLower(oh)
	if suffix, ok := strings.CutPrefix(ph, "*."); ok {
		i := strings.IndexByte(oh, '.')
		return i > 0 && oh[i+1:] == suffix
	}
	return ph == oh
}
