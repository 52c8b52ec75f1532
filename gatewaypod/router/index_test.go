package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// sortLikeCompiler orders routes as controllers/compile does: longer paths
// first, Exact before Prefix on equal length, then by path.
func sortLikeCompiler(rs []snapshot.Route) {
	slices.SortFunc(rs, func(a, b snapshot.Route) int {
		if len(a.Path) != len(b.Path) {
			return len(b.Path) - len(a.Path)
		}
		if a.PathType != b.PathType {
			if a.PathType == snapshot.PathExact {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// The indexed lookup must give exactly the scan's answer.
func TestIndexedLookupEqualsScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	elems := []string{"a", "b", "ab", "c", "api", "v1"}
	randPath := func(maxDepth int) string {
		var b strings.Builder
		for range rng.IntN(maxDepth + 1) {
			b.WriteString("/" + elems[rng.IntN(len(elems))])
		}
		if b.Len() == 0 || rng.IntN(4) == 0 {
			b.WriteString("/")
		}
		return b.String()
	}
	for round := range 200 {
		seen := map[string]bool{}
		var routes []snapshot.Route
		for range 1 + rng.IntN(12) {
			pt := snapshot.PathPrefix
			p := strings.TrimRight(randPath(3), "/")
			if rng.IntN(3) == 0 {
				pt, p = snapshot.PathExact, randPath(3)
			}
			if p == "" {
				p = "/"
			}
			if seen[string(pt)+p] {
				continue
			}
			seen[string(pt)+p] = true
			routes = append(routes, snapshot.Route{Path: p, PathType: pt, Backend: snapshot.Backend{Name: string(pt) + p}})
		}
		sortLikeCompiler(routes)
		rt, err := Compile(&snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "h", Routes: routes}}})
		if err != nil {
			t.Fatal(err)
		}
		vh := rt.exact["h"]
		if vh.exactIdx == nil {
			t.Fatalf("round %d: index not built for %v", round, routes)
		}
		for range 50 {
			p := randPath(5)
			got, want := vh.lookup(p), vh.scan(p)
			if got != want {
				t.Fatalf("round %d path %q: lookup %v, scan %v (routes %v)", round, p, name(got), name(want), routes)
			}
		}
	}
}

func name(r *route) string {
	if r == nil {
		return "<nil>"
	}
	return r.r.Backend.Name
}

func TestIndexFallsBackToScan(t *testing.T) {
	tests := map[string][]snapshot.Route{
		"regex route":          {{Path: "/a/[0-9]+", PathType: snapshot.PathRegex, Backend: snapshot.Backend{Name: "x"}}},
		"non-canonical prefix": {{Path: "/a/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "x"}}},
		"unsorted (hand-made)": {{Path: "/a", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "x"}}, {Path: "/a/b", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "y"}}},
	}
	for name, routes := range tests {
		t.Run(name, func(t *testing.T) {
			rt, err := Compile(&snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "h", Routes: routes}}})
			if err != nil {
				t.Fatal(err)
			}
			if rt.exact["h"].exactIdx != nil {
				t.Error("index built; want the ordered scan")
			}
		})
	}
}

func BenchmarkMatchManyPaths(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		routes := make([]snapshot.Route, 0, n)
		for i := range n {
			routes = append(routes, snapshot.Route{Path: fmt.Sprintf("/svc%d/api", i), PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "b"}})
		}
		sortLikeCompiler(routes)
		rt, err := Compile(&snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "h", Routes: routes}}})
		if err != nil {
			b.Fatal(err)
		}
		path := fmt.Sprintf("/svc%d/api/items/42", n/2)
		b.Run(fmt.Sprintf("paths=%d", n), func(b *testing.B) {
			for b.Loop() {
				if r, _ := rt.Match("h", path); r == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}
