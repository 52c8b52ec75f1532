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

package router

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func rt(path string, pt snapshot.PathType, backend string) snapshot.Route {
	return snapshot.Route{Path: path, PathType: pt, Backend: snapshot.Backend{Name: backend}}
}

func prefix(path, backend string) snapshot.Route { return rt(path, snapshot.PathPrefix, backend) }
func exact(path, backend string) snapshot.Route  { return rt(path, snapshot.PathExact, backend) }

// testSnapshot covers exact, wildcard and host-less virtual hosts, in the
// order the controller's compiler emits routes (longest first, Exact first).
func testSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Hosts: []snapshot.VirtualHost{
			{Host: "", Routes: []snapshot.Route{
				prefix("/catchall", "any-catchall"),
			}},
			{Host: "*.foo.com", Routes: []snapshot.Route{
				prefix("/wild", "wild"),
				prefix("/", "wild-root"),
			}},
			{Host: "a.foo.com", Routes: []snapshot.Route{
				exact("/only", "a-only"),
			}},
			{Host: "foo.com", Routes: []snapshot.Route{
				exact("/foo/bar", "exact-foo-bar"),
				prefix("/foo/bar/", "prefix-foo-bar"),
				exact("/foo", "exact-foo"),
				prefix("/foo", "prefix-foo"),
				exact("/", "exact-root"),
			}},
			{Host: "root.com", Routes: []snapshot.Route{
				prefix("/", "root"),
			}},
		},
	}
}

func TestMatch(t *testing.T) {
	withDefault := testSnapshot()
	withDefault.DefaultBackend = &snapshot.Backend{Name: "default"}
	withHostDefault := testSnapshot()
	withHostDefault.DefaultBackend = &snapshot.Backend{Name: "default"}
	withHostDefault.Hosts[2].DefaultBackend = &snapshot.Backend{Name: "a-default"}
	withHostDefault.Hosts[2].Aliases = []string{"alias.org"}

	tests := map[string]struct {
		snap        *snapshot.Snapshot
		host, path  string
		wantBackend string // "" means no match
		wantRoute   bool
	}{
		"exact path":                           {host: "foo.com", path: "/foo/bar", wantBackend: "exact-foo-bar", wantRoute: true},
		"prefix with trailing slash on rule":   {host: "foo.com", path: "/foo/bar/baz", wantBackend: "prefix-foo-bar", wantRoute: true},
		"prefix rule ignores trailing slash":   {host: "foo.com", path: "/foo/bar/", wantBackend: "prefix-foo-bar", wantRoute: true},
		"exact before prefix":                  {host: "foo.com", path: "/foo", wantBackend: "exact-foo", wantRoute: true},
		"prefix element-wise with slash":       {host: "foo.com", path: "/foo/", wantBackend: "prefix-foo", wantRoute: true},
		"prefix element-wise deeper":           {host: "foo.com", path: "/foo/x/y", wantBackend: "prefix-foo", wantRoute: true},
		"prefix never matches partial name":    {host: "foo.com", path: "/foobar"},
		"prefix is case-sensitive":             {host: "foo.com", path: "/FOO"},
		"exact root":                           {host: "foo.com", path: "/", wantBackend: "exact-root", wantRoute: true},
		"root prefix matches all":              {host: "root.com", path: "/anything/at/all", wantBackend: "root", wantRoute: true},
		"root prefix matches root":             {host: "root.com", path: "/", wantBackend: "root", wantRoute: true},
		"host is case-insensitive":             {host: "FOO.Com", path: "/foo", wantBackend: "exact-foo", wantRoute: true},
		"host port is stripped":                {host: "foo.com:8080", path: "/foo", wantBackend: "exact-foo", wantRoute: true},
		"host trailing dot is stripped":        {host: "foo.com.", path: "/foo", wantBackend: "exact-foo", wantRoute: true},
		"wildcard one label":                   {host: "b.foo.com", path: "/wild/x", wantBackend: "wild", wantRoute: true},
		"wildcard with port":                   {host: "B.foo.com:443", path: "/", wantBackend: "wild-root", wantRoute: true},
		"wildcard not the apex":                {host: "foo.com", path: "/wild"},
		"wildcard not two labels":              {host: "a.b.foo.com", path: "/wild"},
		"exact host before wildcard":           {host: "a.foo.com", path: "/only", wantBackend: "a-only", wantRoute: true},
		"exact host never falls to wildcard":   {host: "a.foo.com", path: "/wild"},
		"host never falls to host-less rules":  {host: "foo.com", path: "/catchall/x"},
		"unmatched path uses default backend":  {snap: withDefault, host: "a.foo.com", path: "/wild", wantBackend: "default"},
		"host default backend before global":   {snap: withHostDefault, host: "a.foo.com", path: "/wild", wantBackend: "a-default"},
		"host default not used on other hosts": {snap: withHostDefault, host: "other.org", path: "/nope", wantBackend: "default"},
		"server alias selects its host":        {snap: withHostDefault, host: "alias.org", path: "/only", wantBackend: "a-only", wantRoute: true},
		"unknown host uses host-less rules":    {host: "other.org", path: "/catchall", wantBackend: "any-catchall", wantRoute: true},
		"empty host uses host-less rules":      {host: "", path: "/catchall", wantBackend: "any-catchall", wantRoute: true},
		"ipv6 host literal":                    {host: "[::1]:8080", path: "/catchall", wantBackend: "any-catchall", wantRoute: true},
		"no match":                             {host: "other.org", path: "/nope"},
		"default backend":                      {snap: withDefault, host: "other.org", path: "/nope", wantBackend: "default"},
		"default backend only when no route":   {snap: withDefault, host: "foo.com", path: "/foo", wantBackend: "exact-foo", wantRoute: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snap := tc.snap
			if snap == nil {
				snap = testSnapshot()
			}
			r, err := Compile(snap)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			route, backend := r.Match(tc.host, tc.path)
			gotBackend := ""
			if backend != nil {
				gotBackend = backend.Name
			}
			if gotBackend != tc.wantBackend {
				t.Errorf("Match(%q, %q) backend = %q, want %q", tc.host, tc.path, gotBackend, tc.wantBackend)
			}
			if (route != nil) != tc.wantRoute {
				t.Errorf("Match(%q, %q) route = %v, want route: %v", tc.host, tc.path, route, tc.wantRoute)
			}
			if route != nil && &route.Backend != backend {
				t.Errorf("backend is not the route's backend")
			}
		})
	}
}

func TestMatchPrefixTable(t *testing.T) {
	// The examples table of the Ingress documentation, Prefix rows.
	tests := []struct {
		rule, path string
		want       bool
	}{
		{"/", "/anything", true},
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo/", "/foo", true},
		{"/foo/", "/foo/", true},
		{"/aaa/bb", "/aaa/bbb", false},
		{"/aaa/bbb", "/aaa/bbb", true},
		{"/aaa/bbb/", "/aaa/bbb", true},
		{"/aaa/bbb", "/aaa/bbb/", true},
		{"/aaa/bbb", "/aaa/bbb/ccc", true},
		{"/aaa/bbb", "/aaa/bbbxyz", false},
	}
	for _, tc := range tests {
		r, err := Compile(&snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Routes: []snapshot.Route{prefix(tc.rule, "b")}}}})
		if err != nil {
			t.Fatal(err)
		}
		_, b := r.Match("x", tc.path)
		if got := b != nil; got != tc.want {
			t.Errorf("Prefix %q on %q: match = %v, want %v", tc.rule, tc.path, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := map[string]struct {
		snap    *snapshot.Snapshot
		wantErr []string
	}{
		"nil": {snap: nil, wantErr: []string{"snapshot is nil"}},
		"bad path and type": {
			snap: &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "a.com", Routes: []snapshot.Route{
				prefix("nope", "x"),
				rt("/x", "Glob", "x"),
				rt("/x(", snapshot.PathRegex, "x"),
			}}}},
			wantErr: []string{`path "nope" must start with '/'`, `unknown pathType "Glob"`, "missing closing )"},
		},
		"duplicate hosts": {
			snap:    &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "a.com"}, {Host: "a.com"}, {Host: "*.a.com"}, {Host: "*.a.com"}, {}, {}}},
			wantErr: []string{`duplicate host "a.com"`, `duplicate host "*.a.com"`, `duplicate host ""`},
		},
		"bad hosts": {
			snap:    &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "A.com"}, {Host: "*."}, {Host: "a.*.com"}}},
			wantErr: []string{`host "A.com"`, `host "*."`, `host "a.*.com"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := Compile(tc.snap)
			if err == nil {
				t.Fatalf("Compile = %v, want error", r)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestCompileCopiesAndReportsBackends(t *testing.T) {
	s := testSnapshot()
	s.Version = "v1-test"
	s.Hosts[4].Routes[0].Backend.Endpoints = []string{"127.0.0.1:1"}
	s.DefaultBackend = &snapshot.Backend{Name: "default"}
	r, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	// Mutating the input afterwards must not change the router.
	s.Hosts[4].Routes[0].Backend.Endpoints[0] = "127.0.0.1:2"
	s.Hosts[4].Routes[0].Path = "/changed"
	_, b := r.Match("root.com", "/x")
	if b == nil || b.Endpoints[0] != "127.0.0.1:1" {
		t.Errorf("router shares memory with the snapshot: %+v", b)
	}
	if r.Version() != "v1-test" {
		t.Errorf("Version() = %q", r.Version())
	}
	got := r.BackendNames()
	slices.Sort(got)
	want := []string{"a-only", "any-catchall", "default", "exact-foo", "exact-foo-bar", "exact-root", "prefix-foo", "prefix-foo-bar", "root", "wild", "wild-root"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BackendNames() (-want +got):\n%s", diff)
	}
}

func BenchmarkMatch(b *testing.B) {
	r, err := Compile(testSnapshot())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Match("b.foo.com:8080", "/wild/x/y")
	}
}
