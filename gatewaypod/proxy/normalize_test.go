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
	"path"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := map[string]struct {
		in, fwd, match string
		bad            bool
	}{
		"clean":                   {in: "/api/v1", fwd: "/api/v1", match: "/api/v1"},
		"root":                    {in: "/", fwd: "/", match: "/"},
		"trailing slash kept":     {in: "/a/", fwd: "/a/", match: "/a/"},
		"double slash":            {in: "//admin", fwd: "/admin", match: "/admin"},
		"many slashes":            {in: "/a///b//", fwd: "/a/b/", match: "/a/b/"},
		"dot":                     {in: "/a/./b", fwd: "/a/b", match: "/a/b"},
		"dot dot":                 {in: "/public/../admin", fwd: "/admin", match: "/admin"},
		"dot dot above root":      {in: "/../../admin", fwd: "/admin", match: "/admin"},
		"trailing dot dot":        {in: "/a/b/..", fwd: "/a/", match: "/a/"},
		"trailing dot":            {in: "/a/.", fwd: "/a/", match: "/a/"},
		"encoded dot dot":         {in: "/public/%2e%2e/admin", fwd: "/admin", match: "/admin"},
		"mixed-case encoded dots": {in: "/public/.%2E/admin", fwd: "/admin", match: "/admin"},
		"encoded unreserved":      {in: "/%61dmin/%7Euser", fwd: "/admin/~user", match: "/admin/~user"},
		"escapes upper-cased":     {in: "/a%2fb%3a", fwd: "/a%2Fb%3A", match: "/a/b:"},
		"encoded slash is data":   {in: "/projects/group%2Frepo", fwd: "/projects/group%2Frepo", match: "/projects/group/repo"},
		"encoded slash merged":    {in: "/%2Fadmin", fwd: "/%2Fadmin", match: "/admin"},
		"utf-8 decoded for match": {in: "/caf%C3%A9", fwd: "/caf%C3%A9", match: "/café"},
		"backslash as slash":      {in: `/a\b`, fwd: `/a\b`, match: "/a/b"},
		"dot dot via %2F":         {in: "/public/..%2Fadmin", bad: true},
		"dot dot via %2f after":   {in: "/public%2F..%2Fadmin", bad: true},
		"dot via %5C":             {in: "/a/.%5Cb", bad: true},
		"dot dot via backslash":   {in: `/public/..\admin`, bad: true},
		"encoded dots via %2F":    {in: "/public%2F%2e%2e%2Fadmin", bad: true},
		"bad escape":              {in: "/a%zz", bad: true},
		"truncated escape":        {in: "/a%2", bad: true},
		"not absolute":            {in: "admin", bad: true},
		"empty":                   {in: "", bad: true},
		"dots inside a name":      {in: "/a/..b/c.d/...", fwd: "/a/..b/c.d/...", match: "/a/..b/c.d/..."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fwd, match, err := normalizePath(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("normalizePath(%q) = %q, %q; want error", tc.in, fwd, match)
				}
				return
			}
			if err != nil || fwd != tc.fwd || match != tc.match {
				t.Fatalf("normalizePath(%q) = %q, %q, %v; want %q, %q", tc.in, fwd, match, err, tc.fwd, tc.match)
			}
		})
	}
}

// decodeAll is what a naive backend does: percent-decode everything, read
// '\' as '/'.
func decodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// checkNormalized asserts the security properties of normalizePath.
func checkNormalized(t *testing.T, in string) {
	fwd, match, err := normalizePath(in)
	if err != nil {
		return
	}
	if !strings.HasPrefix(match, "/") || strings.Contains(match, "//") {
		t.Fatalf("%q: match %q not absolute or has empty segments", in, match)
	}
	for _, seg := range strings.Split(match, "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("%q: match %q has a dot segment", in, match)
		}
	}
	// A backend that decodes and cleans the forwarded path reaches the path
	// we routed on (up to a trailing slash).
	if got, want := path.Clean(decodeAll(fwd)), path.Clean(match); got != want {
		t.Fatalf("%q: backend sees %q, routed as %q (fwd %q)", in, got, want, fwd)
	}
	// Idempotent.
	fwd2, match2, err := normalizePath(fwd)
	if err != nil || fwd2 != fwd || match2 != match {
		t.Fatalf("%q: not idempotent: %q %q -> %q %q %v", in, fwd, match, fwd2, match2, err)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x", "/%2e%2e/", "/a%2F..%2Fb", `/a\..\b`, "/%252e%252e/x",
		"/a/./b/../../c", "/%5c%2e%2e%5cadmin", "/.%2e/", "/x/%2E./y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkNormalized(t, in)
	})
}
