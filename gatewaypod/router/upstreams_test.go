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
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestBackendUpstreams(t *testing.T) {
	grpcs := &snapshot.Upstream{Protocol: snapshot.ProtocolGRPCS}
	https := &snapshot.Upstream{Protocol: snapshot.ProtocolHTTPS}
	route := func(path, backend string, up *snapshot.Upstream, canaries ...string) snapshot.Route {
		r := snapshot.Route{Path: path, PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: backend}, Upstream: up}
		for _, c := range canaries {
			r.Canaries = append(r.Canaries, snapshot.Canary{Backend: snapshot.Backend{Name: c}, Weight: 10})
		}
		return r
	}
	s := &snapshot.Snapshot{
		Hosts: []snapshot.VirtualHost{
			{Host: "a.test", Routes: []snapshot.Route{route("/g", "grpc", grpcs, "grpc-canary"), route("/", "plain", nil)},
				DefaultBackend: &snapshot.Backend{Name: "vhost-default"}},
			{Host: "*.w.test", Routes: []snapshot.Route{route("/", "wild", https)}},
			{Routes: []snapshot.Route{route("/", "any", https)}},
		},
		DefaultBackend: &snapshot.Backend{Name: "default"},
	}
	rt, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	ups := rt.BackendUpstreams()
	want := map[string]*snapshot.Upstream{"grpc": grpcs, "grpc-canary": grpcs, "wild": https, "any": https}
	seen := 0
	for _, b := range rt.Backends() {
		got := ups[b]
		if w := want[b.Name]; got == nil && w != nil || got != nil && (w == nil || got.Protocol != w.Protocol) {
			t.Errorf("backend %s: upstream %+v, want %+v", b.Name, got, w)
		}
		if got != nil {
			seen++
		}
	}
	if seen != len(want) || len(ups) != len(want) {
		t.Errorf("%d of %d backends have an upstream (map of %d), want %d", seen, len(rt.Backends()), len(ups), len(want))
	}
}
