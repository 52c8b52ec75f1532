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

package balancer

import (
	"math/rand/v2"
	"net"
	"net/http"
)

// RoundRobin is smooth weighted round robin (nginx's algorithm): with
// weights 5,1,1 it sends a,a,b,a,c,a,a rather than a,a,a,a,a,b,c. With equal
// weights (the common case) it is a single atomic counter per backend name,
// shared across swaps.
type RoundRobin struct{}

// Select implements Policy.
func (RoundRobin) Select(p *Pool, _ *http.Request) int {
	n := len(p.Endpoints)
	switch {
	case n == 0:
		return -1
	case n == 1:
		return 0
	case p.weights != nil:
		return p.smoothWeighted()
	}
	// Skipping an ejected endpoint consumes a position, so its share is
	// spread over the others instead of doubling its successor's.
	first := p.next.Add(1) - 1
	for k := 0; ; k++ {
		i := int(first % uint64(n))
		if p.Endpoints[i].available() {
			return i
		}
		if k == n-1 {
			return i // all ejected: panic mode
		}
		first = p.next.Add(1) - 1
	}
}

func (p *Pool) smoothWeighted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0
	for i, e := range p.Endpoints {
		if !e.available() {
			continue
		}
		w := p.weights[i]
		p.current[i] += w
		total += w
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best < 0 { // all ejected: panic mode, plain rotation
		return int((p.next.Add(1) - 1) % uint64(len(p.Endpoints)))
	}
	p.current[best] -= total
	return best
}

// LeastRequest picks two endpoints at random and keeps the one with fewer
// requests in flight ("power of two choices"): near-optimal spreading with
// no shared lock and no scan of the whole pool.
type LeastRequest struct{}

// Select implements Policy.
func (LeastRequest) Select(p *Pool, _ *http.Request) int {
	n := len(p.Endpoints)
	switch n {
	case 0:
		return -1
	case 1:
		return 0
	}
	// Two distinct candidates.
	a := rand.IntN(n)
	b := rand.IntN(n - 1)
	if b >= a {
		b++
	}
	ea, eb := p.Endpoints[a], p.Endpoints[b]
	switch okA, okB := ea.available(), eb.available(); {
	case okA && okB:
		if eb.InFlight() < ea.InFlight() {
			return b
		}
		return a
	case okA:
		return a
	case okB:
		return b
	}
	// Both draws hit ejected endpoints: scan from a random point.
	start := rand.IntN(n)
	for k := range n {
		if i := (start + k) % n; p.Endpoints[i].available() {
			return i
		}
	}
	return start
}

// KeyFunc extracts the hashing key of a request; ok false means "no key"
// and the request is balanced by round robin instead.
type KeyFunc func(r *http.Request) (key string, ok bool)

// HeaderKey hashes on the first value of a request header.
func HeaderKey(name string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		v := r.Header.Get(name)
		return v, v != ""
	}
}

// CookieKey hashes on the value of a cookie.
func CookieKey(name string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	}
}

// SourceIPKey hashes on the client address (without port) of the connection.
func SourceIPKey(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, r.RemoteAddr != ""
	}
	return host, true
}

// URIKey hashes on the request URI (path and query).
func URIKey(r *http.Request) (string, bool) { return r.URL.RequestURI(), true }

// ConsistentHash maps equal keys to the same endpoint with Maglev hashing
// (Eisenbud et al., NSDI 2016): a lookup table of a prime size M filled from
// per-endpoint permutations, so a lookup is one hash and one index, and
// adding or removing one of N endpoints remaps about 1/N of the keys.
// Endpoints are identified by address, so the table is the same in every
// gateway pod. An ejected endpoint's keys move to the next table entries.
type ConsistentHash struct {
	// Key extracts the key; nil means the request URI.
	Key KeyFunc
}

// Select implements Policy.
func (h ConsistentHash) Select(p *Pool, r *http.Request) int {
	n := len(p.Endpoints)
	switch n {
	case 0:
		return -1
	case 1:
		return 0
	}
	kf := h.Key
	if kf == nil {
		kf = URIKey
	}
	key, ok := kf(r)
	if !ok {
		return RoundRobin{}.Select(p, r)
	}
	return p.lookup(hashString(key, fnvOffset))
}

// SelectKey is Select for a key the caller already has.
func (p *Pool) SelectKey(key string) int {
	if len(p.Endpoints) == 0 {
		return -1
	}
	return p.lookup(hashString(key, fnvOffset))
}

func (p *Pool) lookup(h uint64) int {
	t := p.maglevTable()
	m := uint64(len(t))
	for k := range uint64(len(p.Endpoints)) * 2 {
		i := int(t[(h+k)%m])
		if p.Endpoints[i].available() {
			return i
		}
	}
	return int(t[h%m]) // all ejected: panic mode
}

// maglevSizes are primes; the table is at least 100 entries per endpoint so
// the share of each endpoint stays within about 1 % of 1/N.
var maglevSizes = []int{65537, 131071, 262139, 524287, 1048573}

func (p *Pool) maglevTable() []int32 {
	p.maglevOnce.Do(func() { p.maglev = buildMaglev(p.Endpoints) })
	return p.maglev
}

func buildMaglev(eps []*Endpoint) []int32 {
	n := len(eps)
	m := maglevSizes[len(maglevSizes)-1]
	for _, s := range maglevSizes {
		if s >= 100*n {
			m = s
			break
		}
	}
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	for i, e := range eps {
		offset[i] = hashString(e.Addr, fnvOffset) % uint64(m)
		skip[i] = hashString(e.Addr, 0x84222325cbf29ce4)%uint64(m-1) + 1
	}
	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	for filled := 0; ; {
		for i := range n {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for table[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = int32(i)
			next[i]++
			if filled++; filled == m {
				return table
			}
		}
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString is 64-bit FNV-1a finished with a murmur3 mix: stable across
// processes (every pod builds the same table) and allocation-free.
func hashString(s string, seed uint64) uint64 {
	h := seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
