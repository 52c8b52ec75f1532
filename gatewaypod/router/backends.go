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

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Backends returns every backend the router can return (route backends,
// canaries, virtual host and instance defaults), each pointer once, in a
// stable order. They belong to the Router: per-endpoint work outside it
// (active health checks, metrics) reads them and must not modify them.
func (rt *Router) Backends() []*snapshot.Backend {
	var out []*snapshot.Backend
	seen := map[*snapshot.Backend]bool{}
	add := func(b *snapshot.Backend) {
		if b != nil && !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	addHost := func(vh *vhost) {
		if vh == nil {
			return
		}
		for i := range vh.routes {
			r := vh.routes[i].r
			add(&r.Backend)
			for k := range r.Canaries {
				add(&r.Canaries[k].Backend)
			}
		}
		add(vh.def)
	}
	for _, h := range sortedHosts(rt.exact) {
		addHost(rt.exact[h])
	}
	for _, h := range sortedHosts(rt.wildcard) {
		addHost(rt.wildcard[h])
	}
	addHost(rt.any)
	add(rt.defaultBackend)
	return out
}

func sortedHosts(m map[string]*vhost) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
