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

// Package bench holds Portico's data-plane benchmarks: router lookup
// scaling here (go test -bench), the peer comparison in peers.sh and the
// idle-connection memory probe in idleconns/, and the swap-under-load proof
// in swapload/.
package bench

import (
	"fmt"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// buildRouter compiles hosts exact hosts with paths Prefix routes each,
// plus a wildcard host and a catch-all.
func buildRouter(b *testing.B, hosts, paths int) *router.Router {
	b.Helper()
	be := snapshot.Backend{Name: "ns/svc:80", Endpoints: []string{"10.0.0.1:80"}}
	s := &snapshot.Snapshot{}
	for i := range hosts {
		vh := snapshot.VirtualHost{Host: fmt.Sprintf("h%d.bench.test", i)}
		for j := range paths {
			vh.Routes = append(vh.Routes, snapshot.Route{Path: fmt.Sprintf("/p%d", paths-1-j), PathType: snapshot.PathPrefix, Backend: be})
		}
		s.Hosts = append(s.Hosts, vh)
	}
	s.Hosts = append(s.Hosts, snapshot.VirtualHost{Host: "*.wild.test", Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix, Backend: be}}})
	rt, err := router.Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// BenchmarkRouterMatch looks up a host in the middle of the table and its
// last-listed path, so a linear scan over hosts or paths shows as growth.
// Flat ns/op across the host counts is the goal (issue 5); growth across the
// path counts shows the per-host structure is a list.
func BenchmarkRouterMatch(b *testing.B) {
	for _, c := range []struct{ hosts, paths int }{
		{10, 1}, {100, 1}, {1000, 1}, {10000, 1},
		{10, 10}, {1000, 100}, {10, 10000}, {1, 100000},
	} {
		rt := buildRouter(b, c.hosts, c.paths)
		host := fmt.Sprintf("h%d.bench.test:8080", c.hosts/2)
		path := "/p0/items/42" // routes are listed from p<n-1> down to p0
		b.Run(fmt.Sprintf("hosts=%d/paths=%d", c.hosts, c.paths), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, _ := rt.Match(host, path); r == nil {
					b.Fatal("no match")
				}
			}
		})
	}
	rt := buildRouter(b, 10000, 1)
	b.Run("wildcard/hosts=10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r, _ := rt.Match("a.wild.test", "/x"); r == nil {
				b.Fatal("no match")
			}
		}
	})
}
