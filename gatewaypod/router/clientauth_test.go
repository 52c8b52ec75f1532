package router

import (
	"net/http/httptest"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestClientAuthLookup(t *testing.T) {
	ca := func(secret string) *snapshot.ClientAuth {
		return &snapshot.ClientAuth{CASecret: secret, CAHash: "0123456789abcdef"}
	}
	route := []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "b"}}}
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{
		{Host: "", Routes: route},
		{Host: "*.wild.test", Routes: route, ClientAuth: ca("ns/wild")},
		{Host: "secure.test", Aliases: []string{"alias.test"}, Routes: route, ClientAuth: ca("ns/secure"),
			DefaultBackend: &snapshot.Backend{Name: "d"}},
		{Host: "www.secure.test", RedirectHost: "secure.test", ClientAuth: ca("ns/secure")},
	}}
	snapshot.Seal(s)
	rt, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"secure.test": "ns/secure", "SECURE.test.": "ns/secure", "alias.test": "ns/secure", "a.wild.test": "ns/wild",
		"www.secure.test": "ns/secure", "a.b.wild.test": "", "other.test": "", "": "",
	} {
		got := ""
		if c := rt.ClientAuth(name); c != nil {
			got = c.CASecret
		}
		if got != want {
			t.Errorf("ClientAuth(%q) = %q, want %q", name, got, want)
		}
		// Decide selects the same verification for the Host header, for
		// routes, default backends and redirects alike.
		for _, path := range []string{"/", "/nothing-matches"} {
			req := httptest.NewRequest("GET", "http://x"+path, nil)
			req.Host = name
			d := rt.Decide(req)
			got := ""
			if d.ClientAuth != nil {
				got = d.ClientAuth.CASecret
			}
			if name != "" && got != want {
				t.Errorf("Decide(Host %q).ClientAuth = %q, want %q", name, got, want)
			}
		}
	}
	if got := rt.ClientCAs(); len(got) != 2 || got["ns/secure"] == "" || got["ns/wild"] == "" {
		t.Errorf("ClientCAs = %v", got)
	}
}
