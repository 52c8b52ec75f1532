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
// answers "which backend serves this host and path". It does no I/O and holds
// no runtime state, so a new Router can be built aside and swapped in whole
// while the old one keeps serving.
//
// Host selection: the request host is lower-cased and stripped of its port and
// of a trailing dot. Virtual hosts are consulted from most to least specific:
// the exact host, then the one-label wildcard ("*.example.com" matches
// "a.example.com", not "example.com" nor "a.b.example.com"), then the rules
// without a host (""). The first route that matches the path, in that order,
// wins; a host whose own routes do not match the path falls through to the
// less specific ones (as rules without a host apply to all traffic). Only when
// nothing matches is the snapshot's DefaultBackend used.
package router

import (
	"errors"
	"fmt"
	"net"
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
}

// vhost holds the routes of one virtual host in match order.
type vhost struct {
	routes []route
}

// route is a snapshot route with its match precomputed.
type route struct {
	// prefix is the rule path without trailing slashes, for Prefix matching;
	// "" for the rule "/" (matches everything).
	prefix string
	r      *snapshot.Route
}

// Compile builds a Router from s. It copies what it keeps, so s may be
// reused by the caller. It checks everything matching relies on and returns
// all problems joined; snapshot.Decode has normally caught them already.
func Compile(s *snapshot.Snapshot) (*Router, error) {
	if s == nil {
		return nil, errors.New("compile router: snapshot is nil")
	}
	rt := &Router{
		version:  s.Version,
		exact:    map[string]*vhost{},
		wildcard: map[string]*vhost{},
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
		vh := &vhost{routes: make([]route, 0, len(in.Routes))}
		for j := range in.Routes {
			r := cloneRoute(&in.Routes[j])
			if !strings.HasPrefix(r.Path, "/") {
				errs = append(errs, fmt.Errorf("host %q route %d: path %q must start with '/'", in.Host, j, r.Path))
				continue
			}
			if r.PathType != snapshot.PathExact && r.PathType != snapshot.PathPrefix {
				errs = append(errs, fmt.Errorf("host %q route %d: unknown pathType %q", in.Host, j, r.PathType))
				continue
			}
			vh.routes = append(vh.routes, route{prefix: strings.TrimRight(r.Path, "/"), r: r})
			addName(&r.Backend)
		}
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
	if s.DefaultBackend != nil {
		rt.defaultBackend = cloneBackend(s.DefaultBackend)
		addName(rt.defaultBackend)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("compile router for snapshot %q: %w", s.Version, err)
	}
	return rt, nil
}

// Version is the snapshot version the router was compiled from.
func (rt *Router) Version() string { return rt.version }

// BackendNames lists every backend the router can return, each once, so
// per-backend state kept outside the router can be pruned after a swap.
func (rt *Router) BackendNames() []string {
	return append([]string(nil), rt.backendNames...)
}

// Match returns the route and backend for a request. route is nil when the
// request fell back to the default backend; both are nil when nothing
// matches (the proxy answers 404). host is the request's Host header, with or
// without port; path is the URL path. The returned values belong to the
// Router and must not be modified.
func (rt *Router) Match(host, path string) (*snapshot.Route, *snapshot.Backend) {
	host = normalizeHost(host)
	if vh := rt.exact[host]; vh != nil {
		if r := vh.match(path); r != nil {
			return r, &r.Backend
		}
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if vh := rt.wildcard[host[i+1:]]; vh != nil {
			if r := vh.match(path); r != nil {
				return r, &r.Backend
			}
		}
	}
	if rt.any != nil {
		if r := rt.any.match(path); r != nil {
			return r, &r.Backend
		}
	}
	return nil, rt.defaultBackend
}

// match returns the first route of vh that matches path, or nil.
func (vh *vhost) match(path string) *snapshot.Route {
	for i := range vh.routes {
		if vh.routes[i].matches(path) {
			return vh.routes[i].r
		}
	}
	return nil
}

// matches implements the Ingress path semantics: Exact is string equality;
// Prefix compares '/'-separated elements, so "/foo" matches "/foo", "/foo/"
// and "/foo/bar" but never "/foobar", and a trailing slash on the rule is
// ignored.
func (r *route) matches(path string) bool {
	if r.r.PathType == snapshot.PathExact {
		return path == r.r.Path
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
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
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
	return &c
}

func cloneBackend(b *snapshot.Backend) *snapshot.Backend {
	c := *b
	c.Endpoints = append([]string(nil), b.Endpoints...)
	return &c
}
