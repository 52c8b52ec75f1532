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

import "github.com/portico-dev/portico/gatewaypod/snapshot"

// BackendUpstreams maps every route and canary backend of Backends to its
// route's Upstream (how requests reach it: protocol, TLS), for work that
// must reach endpoints the way requests do (active health checks). Backends
// reached without a route (virtual host and instance defaults) and routes
// without an Upstream are absent: plain HTTP.
func (rt *Router) BackendUpstreams() map[*snapshot.Backend]*snapshot.Upstream {
	out := map[*snapshot.Backend]*snapshot.Upstream{}
	addHost := func(vh *vhost) {
		for i := range vh.routes {
			r := vh.routes[i].r
			if r.Upstream == nil {
				continue
			}
			out[&r.Backend] = r.Upstream
			for k := range r.Canaries {
				out[&r.Canaries[k].Backend] = r.Upstream
			}
		}
	}
	rt.eachHost(addHost)
	return out
}

// eachHost calls f with every virtual host (exact, wildcard, catch-all),
// in no particular order.
func (rt *Router) eachHost(f func(*vhost)) {
	for _, vh := range rt.exact {
		f(vh)
	}
	for _, vh := range rt.wildcard {
		f(vh)
	}
	if rt.any != nil {
		f(rt.any)
	}
}
