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
	"errors"
	"strings"
)

// errBadPath is answered with 400: the path is malformed or tries to climb
// out of a segment through an encoded separator.
var errBadPath = errors.New("bad request path")

// normalizePath canonicalises the escaped request path raw before routing
// and returns:
//
//   - fwd, the escaped path forwarded upstream: percent-encoded unreserved
//     characters decoded ("%41" -> "A", "%2e" -> "."), other escapes
//     upper-cased, "." and ".." segments resolved (RFC 3986 5.2.4, never
//     above the root) and repeated slashes merged;
//   - match, the path routes are matched against: fwd fully decoded, with
//     '\' read as '/' and slashes merged again.
//
// Encoded slashes and backslashes ("%2F", "%5C") stay in fwd, so a backend
// that treats them as data still can, but a segment that would become "."
// or ".." once they are decoded ("/a/..%2Fadmin") is refused. Together this
// means a backend that decodes and resolves the path itself ends up with
// match (up to a trailing slash): no request reaches a path the rules did
// not route it as. The common clean path costs one scan and no allocation.
func normalizePath(raw string) (fwd, match string, err error) {
	if raw == "" || raw[0] != '/' {
		return "", "", errBadPath
	}
	if isCleanPath(raw) {
		return raw, raw, nil
	}
	var segs []string
	trailing := false
	for p := raw[1:]; ; {
		i := strings.IndexByte(p, '/')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		s, err := normalizeSegment(seg)
		if err != nil {
			return "", "", err
		}
		switch s {
		case "", ".":
			trailing = true
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
		default:
			if hasDotSubsegment(s) {
				return "", "", errBadPath
			}
			segs = append(segs, s)
			trailing = false
		}
		if i < 0 {
			break
		}
		p = p[i+1:]
	}
	var b strings.Builder
	b.Grow(len(raw))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing || len(segs) == 0 {
		b.WriteByte('/')
	}
	fwd = b.String()
	return fwd, matchPath(fwd), nil
}

// isCleanPath reports whether raw needs no work: no escapes, no backslash,
// no empty or dot segment.
func isCleanPath(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '%', '\\':
			return false
		case '/':
			if i+1 < len(raw) && (raw[i+1] == '/' || raw[i+1] == '.') {
				return false
			}
		}
	}
	return true
}

// normalizeSegment decodes escaped unreserved characters in one segment and
// upper-cases the remaining escapes; a malformed escape is an error.
func normalizeSegment(seg string) (string, error) {
	if strings.IndexByte(seg, '%') < 0 {
		return seg, nil
	}
	var b strings.Builder
	b.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
			return "", errBadPath
		}
		d := unhex(seg[i+1])<<4 | unhex(seg[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex(seg[i+1]))
			b.WriteByte(upperHex(seg[i+2]))
		}
		i += 2
	}
	return b.String(), nil
}

// hasDotSubsegment reports whether s, split at encoded slashes and at
// backslashes (literal or encoded), has a "." or ".." part.
func hasDotSubsegment(s string) bool {
	if strings.IndexByte(s, '.') < 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		end := -1
		switch {
		case i == len(s):
			end = i
		case s[i] == '\\':
			end = i
		case s[i] == '%' && i+2 < len(s) && (s[i+1:i+3] == "2F" || s[i+1:i+3] == "5C"):
			end = i
		}
		if end < 0 {
			continue
		}
		if part := s[start:end]; part == "." || part == ".." {
			return true
		}
		if i < len(s) && s[i] == '%' {
			i += 2
		}
		start = i + 1
	}
	return false
}

// matchPath decodes fwd fully, reads '\' as '/' and merges slashes.
func matchPath(fwd string) string {
	if strings.IndexByte(fwd, '%') < 0 && strings.IndexByte(fwd, '\\') < 0 {
		return fwd
	}
	b := make([]byte, 0, len(fwd))
	for i := 0; i < len(fwd); i++ {
		c := fwd[i]
		if c == '%' && i+2 < len(fwd) {
			c = unhex(fwd[i+1])<<4 | unhex(fwd[i+2])
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		if c == '/' && len(b) > 0 && b[len(b)-1] == '/' {
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved is RFC 3986's unreserved set: ALPHA DIGIT "-" "." "_" "~".
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
