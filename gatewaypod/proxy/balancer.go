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

package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// roundRobin picks endpoints in turn. Its counters are keyed by backend name
// and live outside the router, so a snapshot swap (even one that changes the
// endpoint list) continues the rotation instead of sending every pod's next
// request to the first endpoint.
type roundRobin struct {
	counters sync.Map // backend name -> *atomic.Uint64
}

// pick returns the next endpoint of b, or "" when b has none.
func (rr *roundRobin) pick(b *snapshot.Backend) string {
	switch n := len(b.Endpoints); n {
	case 0:
		return ""
	case 1:
		return b.Endpoints[0]
	default:
		i := rr.counter(b.Name).Add(1) - 1
		return b.Endpoints[i%uint64(n)]
	}
}

func (rr *roundRobin) counter(name string) *atomic.Uint64 {
	if c, ok := rr.counters.Load(name); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := rr.counters.LoadOrStore(name, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// retain drops the counters of backends not in names, so state does not grow
// with every backend that ever existed. A request still in flight on the old
// router may recreate a dropped counter; the next swap drops it again.
func (rr *roundRobin) retain(names []string) {
	keep := make(map[string]struct{}, len(names))
	for _, n := range names {
		keep[n] = struct{}{}
	}
	rr.counters.Range(func(k, _ any) bool {
		if _, ok := keep[k.(string)]; !ok {
			rr.counters.Delete(k)
		}
		return true
	})
}
