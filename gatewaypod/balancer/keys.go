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
	"net/http"
	"strings"
)

// NginxKey returns the KeyFunc of an ingress-nginx upstream-hash-by value:
// "$request_uri", "$uri", "$host", "$remote_addr", "$http_<name>",
// "$cookie_<name>", "$arg_<name>", or a template mixing them with literal
// text ("$host$request_uri"). An unknown variable expands to "" as in
// nginx. A template whose variables are all empty gives no key (round
// robin for that request).
func NginxKey(spec string) KeyFunc {
	parts := parseNginxKey(spec)
	if len(parts) == 1 && parts[0].fn != nil {
		return parts[0].fn // common case: one variable, no allocation
	}
	return func(r *http.Request) (string, bool) {
		var b strings.Builder
		found := false
		for _, p := range parts {
			if p.fn == nil {
				b.WriteString(p.lit)
				continue
			}
			if v, ok := p.fn(r); ok {
				b.WriteString(v)
				found = found || v != ""
			}
		}
		return b.String(), found
	}
}

type keyPart struct {
	lit string
	fn  KeyFunc
}

func parseNginxKey(spec string) []keyPart {
	var parts []keyPart
	for spec != "" {
		i := strings.IndexByte(spec, '$')
		if i != 0 {
			if i < 0 {
				i = len(spec)
			}
			parts = append(parts, keyPart{lit: spec[:i]})
			spec = spec[i:]
			continue
		}
		j := 1
		for j < len(spec) && (isVarChar(spec[j])) {
			j++
		}
		name := spec[1:j]
		spec = spec[j:]
		if name == "" {
			parts = append(parts, keyPart{lit: "$"})
			continue
		}
		parts = append(parts, keyPart{fn: nginxVar(name)})
	}
	return parts
}

func isVarChar(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func nginxVar(name string) KeyFunc {
	switch {
	case name == "request_uri":
		return URIKey
	case name == "uri":
		return func(r *http.Request) (string, bool) { return r.URL.Path, true }
	case name == "host":
		return func(r *http.Request) (string, bool) { return r.Host, r.Host != "" }
	case name == "remote_addr":
		return SourceIPKey
	case strings.HasPrefix(name, "http_"):
		return HeaderKey(strings.ReplaceAll(name[len("http_"):], "_", "-"))
	case strings.HasPrefix(name, "cookie_"):
		return CookieKey(name[len("cookie_"):])
	case strings.HasPrefix(name, "arg_"):
		arg := name[len("arg_"):]
		return func(r *http.Request) (string, bool) {
			if r.URL.RawQuery == "" {
				return "", false
			}
			v := r.URL.Query().Get(arg)
			return v, v != ""
		}
	}
	return func(*http.Request) (string, bool) { return "", false }
}
