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

// Package router turns a snapshot into an immutable lookup structure that
// answers "which backend serves this request, and how". It does no I/O and
// holds no runtime state, so a new Router can be built aside and swapped in
// whole while the old one keeps serving.
//
// Host selection: the request host is lower-cased and stripped of its port and
// of a trailing dot. The most specific virtual host is chosen: the exact host
// (or a server alias), else the one-label wildcard ("*.example.com" matches
// "a.example.com", not "example.com" nor "a.b.example.com"), else the rules
// without a host (""). The choice is final: when none of the chosen host's
// routes matches the path, the request does not fall through to less
// specific hosts; it goes to that host's default backend, then to the
// snapshot's DefaultBackend, and only then answers 404. This is what the
// Ingress API implies (rules are per host; defaultBackend serves what no
// rule matches) and what ingress-nginx, Contour and Envoy do.
//
// Path selection: routes are ordered by the compiler (longest path first;
// Exact, then Prefix, then Regex on equal length) and the first match wins.
// Regex routes match case-insensitively at the start of the path.
package router

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Router is a compiled, read-only snapshot. It is safe for concurrent use and
// must not be modified after Compile returns.
type Router struct {
	version  string
	exact    map[string]*vhost
	wildcard map[string]*vhost // keyed by the suffix after "*."
	any      *vhost            // rules without a host; nil when there are none

	defaultBackend *snapshot.Backend
	backendNames   []string

	certExact    map[string]*snapshot.Certificate
	certWildcard map[string]*snapshot.Certificate // keyed by the suffix after "*."

	intn func(n int) int
}

// Options tune a Router.
type Options struct {
	// IntN returns a uniform integer in [0, n); it draws canary weights.
	// Nil means math/rand/v2.IntN. It must be safe for concurrent use.
	IntN func(n int) int
}

// vhost holds the routes of one virtual host in match order.
type vhost struct {
	routes       []route
	def          *snapshot.Backend
	redirectHost string
	clientAuth   *snapshot.ClientAuth // auth-tls-*; nil without
	matchCN      *regexp.Regexp       // clientAuth.MatchCN compiled; nil without
	// exactIdx and prefixIdx index routes by path when the virtual host has
	// no Regex route and every Prefix path is in canonical form; then a
	// lookup costs one map probe per path element instead of a scan of all
	// routes, and gives the same answer (see index). nil: scan.
	exactIdx  map[string]int
	prefixIdx map[string]int
}

// index builds exactIdx and prefixIdx. In the compiler's order (longer
// paths first, Exact before Prefix on equal length) the first matching
// route is: the Exact route equal to the path if any (nothing longer can
// match), else the Prefix route with the longest prefix that is a whole
// element prefix of the path. Both are found by lookups when Prefix paths
// carry no trailing slash, so the index is used only then.
func (vh *vhost) index() {
	exact, prefix := map[string]int{}, map[string]int{}
	for i := range vh.routes {
		r := &vh.routes[i]
		switch r.r.PathType {
		case snapshot.PathExact:
			if _, dup := exact[r.r.Path]; !dup {
				exact[r.r.Path] = i
			}
		case snapshot.PathPrefix:
			if r.r.Path != "/" && r.r.Path != r.prefix {
				return // not canonical: keep the scan
			}
			if _, dup := prefix[r.prefix]; !dup {
				prefix[r.prefix] = i
			}
		default:
			return // Regex: order matters, keep the scan
		}
	}
	// The scan order must agree with the index: check it is sorted the way
	// the compiler sorts (a hand-made snapshot might not be).
	for i := 1; i < len(vh.routes); i++ {
		a, b := vh.routes[i-1].r, vh.routes[i].r
		if len(a.Path) < len(b.Path) || (len(a.Path) == len(b.Path) && a.PathType == snapshot.PathPrefix && b.PathType == snapshot.PathExact) {
			return
		}
	}
	vh.exactIdx, vh.prefixIdx = exact, prefix
}

// route is a snapshot route with its matching and policies precomputed.
type route struct {
	// prefix is the rule path without trailing slashes, for Prefix matching;
	// "" for the rule "/" (matches everything).
	prefix string
	// re matches Regex routes: "(?i)^(?:path)".
	re *regexp.Regexp
	// rewrite captures groups for Rewrite.Target: "(?i)path", the path
	// quoted unless the route is Regex (ingress-nginx's rewrite directive).
	rewrite  *regexp.Regexp
	canaries []*regexp.Regexp // HeaderPattern per canary, nil when unset
	allow    []netip.Prefix
	deny     []netip.Prefix
	r        *snapshot.Route
}

// Compile builds a Router from s. It copies what it keeps, so s may be
// reused by the caller. It checks everything matching relies on and returns
// all problems joined; snapshot.Decode has normally caught them already.
func Compile(s *snapshot.Snapshot) (*Router, error) {
	return CompileWithOptions(s, Options{})
}

// CompileWithOptions is Compile with Options.
func CompileWithOptions(s *snapshot.Snapshot, opts Options) (*Router, error) {
	if s == nil {
		return nil, errors.New("compile router: snapshot is nil")
	}
	rt := &Router{
		version:      s.Version,
		exact:        map[string]*vhost{},
		wildcard:     map[string]*vhost{},
		certExact:    map[string]*snapshot.Certificate{},
		certWildcard: map[string]*snapshot.Certificate{},
		intn:         opts.IntN,
	}
	if rt.intn == nil {
		rt.intn = rand.IntN
	}
	names := map[string]bool{}
	addName := func(b *snapshot.Backend) {
		if !names[b.Name] {
			names[b.Name] = true
			rt.backendNames = append(rt.backendNames, b.Name)
		}
	}
	var errs []error
	for i := range s.Hosts {
		in := &s.Hosts[i]
		vh := &vhost{routes: make([]route, 0, len(in.Routes)), redirectHost: in.RedirectHost, clientAuth: clonePtr(in.ClientAuth)}
		if ca := in.ClientAuth; ca != nil && ca.MatchCN != "" {
			re, err := regexp.Compile(ca.MatchCN)
			if err != nil {
				errs = append(errs, fmt.Errorf("host %q clientAuth.matchCN: %w", in.Host, err))
				continue
			}
			vh.matchCN = re
		}
		if in.DefaultBackend != nil {
			vh.def = cloneBackend(in.DefaultBackend)
			addName(vh.def)
		}
		for j := range in.Routes {
			rr, err := compileRoute(&in.Routes[j])
			if err != nil {
				errs = append(errs, fmt.Errorf("host %q route %d: %w", in.Host, j, err))
				continue
			}
			vh.routes = append(vh.routes, rr)
			addName(&rr.r.Backend)
			for k := range rr.r.Canaries {
				addName(&rr.r.Canaries[k].Backend)
			}
			if ce := rr.r.CustomErrors; ce != nil && ce.Backend != nil {
				addName(ce.Backend)
			}
		}
		vh.index()
		host := in.Host
		switch {
		case host == "":
			if rt.any != nil {
				errs = append(errs, errors.New("duplicate host \"\""))
			}
			rt.any = vh
		case strings.HasPrefix(host, "*."):
			suffix := host[2:]
			if suffix == "" || strings.Contains(suffix, "*") || host != strings.ToLower(host) {
				errs = append(errs, fmt.Errorf("host %q: invalid wildcard host", host))
				continue
			}
			if rt.wildcard[suffix] != nil {
				errs = append(errs, fmt.Errorf("duplicate host %q", host))
			}
			rt.wildcard[suffix] = vh
		default:
			if strings.Contains(host, "*") || host != strings.ToLower(host) {
				errs = append(errs, fmt.Errorf("host %q: must be lower-case, with '*' only as a leading \"*.\"", host))
				continue
			}
			if rt.exact[host] != nil {
				errs = append(errs, fmt.Errorf("duplicate host %q", host))
			}
			rt.exact[host] = vh
		}
	}
	// Aliases after hosts, so a real host always wins the name.
	for i := range s.Hosts {
		for _, a := range s.Hosts[i].Aliases {
			if rt.exact[a] != nil || strings.Contains(a, "*") || a != strings.ToLower(a) {
				errs = append(errs, fmt.Errorf("alias %q of host %q: invalid or duplicate", a, s.Hosts[i].Host))
				continue
			}
			rt.exact[a] = rt.lookupVhost(s.Hosts[i].Host)
		}
	}
	if s.DefaultBackend != nil {
		rt.defaultBackend = cloneBackend(s.DefaultBackend)
		addName(rt.defaultBackend)
	}
	for i := range s.Certificates {
		c := s.Certificates[i]
		c.Hosts = append([]string(nil), c.Hosts...)
		for _, h := range c.Hosts {
			if suffix, ok := strings.CutPrefix(h, "*."); ok {
				rt.certWildcard[suffix] = &c
			} else {
				rt.certExact[h] = &c
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("compile router for snapshot %q: %w", s.Version, err)
	}
	return rt, nil
}

// lookupVhost returns the virtual host compiled for the snapshot host h.
func (rt *Router) lookupVhost(h string) *vhost {
	switch {
	case h == "":
		return rt.any
	case strings.HasPrefix(h, "*."):
		return rt.wildcard[h[2:]]
	}
	return rt.exact[h]
}

func compileRoute(in *snapshot.Route) (route, error) {
	r := cloneRoute(in)
	rr := route{r: r}
	if !strings.HasPrefix(r.Path, "/") {
		return rr, fmt.Errorf("path %q must start with '/'", r.Path)
	}
	var err error
	switch r.PathType {
	case snapshot.PathExact:
	case snapshot.PathPrefix:
		rr.prefix = strings.TrimRight(r.Path, "/")
	case snapshot.PathRegex:
		if rr.re, err = regexp.Compile("(?i)^(?:" + r.Path + ")"); err != nil {
			return rr, fmt.Errorf("path %q: %w", r.Path, err)
		}
	default:
		return rr, fmt.Errorf("unknown pathType %q", r.PathType)
	}
	if r.Rewrite != nil {
		expr := regexp.QuoteMeta(r.Path)
		if r.PathType == snapshot.PathRegex {
			expr = r.Path
		}
		if rr.rewrite, err = regexp.Compile("(?i)" + expr); err != nil {
			return rr, fmt.Errorf("rewrite of path %q: %w", r.Path, err)
		}
	}
	if len(r.Canaries) > 0 {
		rr.canaries = make([]*regexp.Regexp, len(r.Canaries))
		for k, c := range r.Canaries {
			if c.HeaderPattern != "" && len(c.HeaderValues) == 0 {
				if rr.canaries[k], err = regexp.Compile(c.HeaderPattern); err != nil {
					return rr, fmt.Errorf("canary %d headerPattern: %w", k, err)
				}
			}
		}
	}
	if a := r.Access; a != nil {
		for _, p := range a.Allow {
			pp, err := netip.ParsePrefix(p)
			if err != nil {
				return rr, fmt.Errorf("access allow %q: %w", p, err)
			}
			rr.allow = append(rr.allow, pp)
		}
		for _, p := range a.Deny {
			pp, err := netip.ParsePrefix(p)
			if err != nil {
				return rr, fmt.Errorf("access deny %q: %w", p, err)
			}
			rr.deny = append(rr.deny, pp)
		}
	}
	return rr, nil
}

// Version is the snapshot version the router was compiled from.
func (rt *Router) Version() string { return rt.version }

// BackendNames lists every backend the router can return (canaries and
// default backends included), each once, so per-backend state kept outside
// the router can be pruned after a swap.
func (rt *Router) BackendNames() []string {
	return append([]string(nil), rt.backendNames...)
}

// Certificate returns the certificate to serve for a TLS server name (SNI):
// the exact name, else the one-label wildcard; nil means the default
// certificate. The result belongs to the Router.
func (rt *Router) Certificate(serverName string) *snapshot.Certificate {
	h := normalizeHost(serverName)
	if c := rt.certExact[h]; c != nil {
		return c
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		return rt.certWildcard[h[i+1:]]
	}
	return nil
}

// Match returns the route and backend for a request, without canaries,
// redirects or rewrites (see Decide). route is nil when the request fell
// back to a default backend; both are nil when nothing matches (the proxy
// answers 404), and for hosts that only redirect (from-to-www-redirect).
// host is the request's Host header, with or without port; path is the URL
// path. The returned values belong to the Router and must not be modified.
func (rt *Router) Match(host, path string) (*snapshot.Route, *snapshot.Backend) {
	vh := rt.host(normalizeHost(host))
	if vh == nil {
		return nil, rt.defaultBackend
	}
	if vh.redirectHost != "" {
		return nil, nil
	}
	if r := vh.match(path); r != nil {
		return r.r, &r.r.Backend
	}
	if vh.def != nil {
		return nil, vh.def
	}
	return nil, rt.defaultBackend
}

// host returns the most specific virtual host for a normalized host name.
func (rt *Router) host(host string) *vhost {
	if vh := rt.exact[host]; vh != nil {
		return vh
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if vh := rt.wildcard[host[i+1:]]; vh != nil {
			return vh
		}
	}
	return rt.any
}

// match returns the first route of vh that matches path, or nil.
func (vh *vhost) match(path string) *route {
	if vh.exactIdx != nil {
		return vh.lookup(path)
	}
	return vh.scan(path)
}

// lookup is match through the index: the exact path, then each element
// prefix of path from the longest to "" (the rule "/").
func (vh *vhost) lookup(path string) *route {
	if i, ok := vh.exactIdx[path]; ok {
		return &vh.routes[i]
	}
	if len(vh.prefixIdx) == 0 {
		return nil
	}
	p := strings.TrimRight(path, "/")
	for {
		if i, ok := vh.prefixIdx[p]; ok && vh.routes[i].matches(path) {
			return &vh.routes[i]
		}
		if p == "" {
			return nil
		}
		cut := strings.LastIndexByte(p, '/')
		if cut < 0 {
			return nil
		}
		p = p[:cut]
	}
}

// scan is match by trying every route in order.
func (vh *vhost) scan(path string) *route {
	for i := range vh.routes {
		if vh.routes[i].matches(path) {
			return &vh.routes[i]
		}
	}
	return nil
}

// matches implements the path semantics: Exact is string equality; Prefix
// compares '/'-separated elements, so "/foo" matches "/foo", "/foo/" and
// "/foo/bar" but never "/foobar", and a trailing slash on the rule is
// ignored; Regex matches case-insensitively at the start of the path.
func (r *route) matches(path string) bool {
	switch r.r.PathType {
	case snapshot.PathExact:
		return path == r.r.Path
	case snapshot.PathRegex:
		return r.re.MatchString(path)
	}
	if r.prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, r.prefix) {
		return false
	}
	return len(path) == len(r.prefix) || path[len(r.prefix)] == '/'
}

// normalizeHost lower-cases host and strips a port and a trailing dot, so
// "Foo.Example.com.:8080" and "foo.example.com" select the same virtual host.
func normalizeHost(host string) string {
	// Without a colon there is no port (what browsers send for 80 and
	// 443), and SplitHostPort would allocate its "missing port" error.
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

func cloneRoute(r *snapshot.Route) *snapshot.Route {
	c := *r
	c.Backend = *cloneBackend(&r.Backend)
	if r.Canaries != nil {
		c.Canaries = make([]snapshot.Canary, len(r.Canaries))
		for i := range r.Canaries {
			c.Canaries[i] = r.Canaries[i]
			c.Canaries[i].Backend = *cloneBackend(&r.Canaries[i].Backend)
		}
	}
	// Policy structs are replaced, never mutated, by the snapshot's users;
	// copy them anyway so the router owns everything it returns.
	c.Rewrite = clonePtr(r.Rewrite)
	c.Redirect = clonePtr(r.Redirect)
	c.CORS = clonePtr(r.CORS)
	c.Access = clonePtr(r.Access)
	c.Limits = clonePtr(r.Limits)
	c.Balancer = clonePtr(r.Balancer)
	c.Upstream = clonePtr(r.Upstream)
	if ce := r.CustomErrors; ce != nil {
		c.CustomErrors = &snapshot.CustomErrors{Codes: append([]int(nil), ce.Codes...)}
		if ce.Backend != nil {
			c.CustomErrors.Backend = cloneBackend(ce.Backend)
		}
	}
	c.JWT = clonePtr(r.JWT)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func cloneBackend(b *snapshot.Backend) *snapshot.Backend {
	c := *b
	c.Endpoints = append([]string(nil), b.Endpoints...)
	c.HealthCheck = clonePtr(b.HealthCheck)
	return &c
}
