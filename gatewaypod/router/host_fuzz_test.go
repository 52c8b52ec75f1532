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
	"strings"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// hostFuzzSnapshot has one backend per virtual host, so the backend name
// tells which virtual host a request selected, and a certificate per name.
func hostFuzzSnapshot() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Hosts: []snapshot.VirtualHost{
			{Host: "", Routes: []snapshot.Route{prefix("/", "any")}},
			{Host: "*.foo.com", Routes: []snapshot.Route{prefix("/", "wild")}},
			{Host: "a.foo.com", Aliases: []string{"alias.test"}, Routes: []snapshot.Route{prefix("/", "a")}},
			{Host: "foo.com", Routes: []snapshot.Route{prefix("/", "foo")}},
		},
		Certificates: []snapshot.Certificate{
			{Secret: "ns/default", Default: true},
			{Secret: "ns/foo", Hosts: []string{"foo.com"}},
			{Secret: "ns/wild", Hosts: []string{"*.foo.com"}},
		},
	}
}

// asciiUpper upper-cases ASCII letters only (what a client may vary in a
// DNS name; other bytes are not case-folded by anyone on the path).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzHost feeds arbitrary Host header values and TLS server names to the
// router's host lookup (Match) and SNI lookup (Certificate) and checks:
// no panic; ASCII case, a ":port" suffix and one trailing dot never change
// the choice; an exact virtual host or certificate is chosen only for a
// name that spells it, and the wildcard only for one more label.
func FuzzHost(f *testing.F) {
	r, err := Compile(hostFuzzSnapshot())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "foo.com", "FOO.com.", "foo.com:8080", "a.foo.com", "x.y.foo.com", ".foo.com",
		"[::1]", "[::1]:443", "::1", "[foo.com]:80", "foo.com:", ":80", "foo.com..", "alias.test", "*.foo.com",
		"a.foo.com:abc", "xn--bcher-kva.foo.com", "a.foo.com\x00", "[fe80::1%25eth0]:8080", "ﬀ.foo.com", "foo.com:80:80"} {
		f.Add(s)
	}
	backend := func(host string) string {
		_, b := r.Match(host, "/")
		if b == nil {
			return ""
		}
		return b.Name
	}
	secret := func(name string) string {
		if c := r.Certificate(name); c != nil {
			return c.Secret
		}
		return ""
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, cert := backend(host), secret(host)
		if got == "" {
			t.Fatalf("Match(%q): no backend although a host-less virtual host catches everything", host)
		}
		variants := []string{asciiUpper(host)}
		if !strings.ContainsAny(host, ":[]") {
			variants = append(variants, host+":8080", asciiUpper(host)+":443")
			if !strings.HasSuffix(host, ".") {
				variants = append(variants, host+".", host+".:80")
			}
		}
		for _, v := range variants {
			if b := backend(v); b != got {
				t.Fatalf("Match(%q) = %q but Match(%q) = %q", host, got, v, b)
			}
			if c := secret(v); c != cert {
				t.Fatalf("Certificate(%q) = %q but Certificate(%q) = %q", host, cert, v, c)
			}
		}
		lower := strings.ToLower(host)
		spells := func(name string) bool { return strings.Contains(lower, name) }
		// oneLabelUnderFoo: the name is one label followed by ".foo.com".
		i := strings.Index(lower, ".foo.com")
		oneLabelUnderFoo := i > 0 && !strings.Contains(lower[:i], ".")
		switch got {
		case "a":
			if !spells("a.foo.com") && !spells("alias.test") {
				t.Fatalf("Match(%q) chose a.foo.com", host)
			}
		case "foo":
			if !spells("foo.com") {
				t.Fatalf("Match(%q) chose foo.com", host)
			}
		case "wild":
			if !oneLabelUnderFoo {
				t.Fatalf("Match(%q) chose *.foo.com", host)
			}
		}
		switch cert {
		case "ns/foo":
			if !spells("foo.com") {
				t.Fatalf("Certificate(%q) chose foo.com's", host)
			}
		case "ns/wild":
			if !oneLabelUnderFoo {
				t.Fatalf("Certificate(%q) chose *.foo.com's", host)
			}
		case "ns/default":
			t.Fatalf("Certificate(%q) returned the default certificate itself; nil means default", host)
		}
	})
}
