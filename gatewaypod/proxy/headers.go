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
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// Canonical names of the headers the proxy sets or strips.
const (
	hdrConnection       = "Connection"
	hdrForwarded        = "Forwarded"
	hdrXForwardedFor    = "X-Forwarded-For"
	hdrXForwardedHost   = "X-Forwarded-Host"
	hdrXForwardedProto  = "X-Forwarded-Proto"
	hdrXForwardedPort   = "X-Forwarded-Port"
	hdrXRealIP          = "X-Real-Ip"
	hdrXRequestID       = "X-Request-Id"
	hdrXForwardedPrefix = "X-Forwarded-Prefix"
)

// hopHeaders apply to one connection only and are never forwarded (RFC 9110
// 7.6.1, plus the de-facto Proxy-Connection and Keep-Alive). "Te" is
// forwarded when it is exactly "trailers" (gRPC); Expect is answered by this
// hop (net/http sends 100 Continue when the body is read).
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Expect":              true,
	"Content-Length":      true, // re-written from the framing the proxy uses
}

// forwardedHeaders describe the client; they are taken from the request
// only when the peer is a trusted proxy.
var forwardedHeaders = map[string]bool{
	hdrForwarded:       true,
	hdrXForwardedFor:   true,
	hdrXForwardedHost:  true,
	hdrXForwardedProto: true,
	hdrXForwardedPort:  true,
	hdrXRealIP:         true,
}

// connectionListed reports whether name is listed in the Connection header
// values (those headers are hop-by-hop too).
func connectionListed(conn []string, name string) bool {
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// trust decides whether a peer's X-Forwarded-* headers are believed.
type trust struct {
	prefixes []netip.Prefix
}

func (t *trust) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwarded is what the proxy tells the backend about the client.
type forwarded struct {
	// peerIP is the address of the TCP peer, without port.
	peerIP string
	// trusted: the peer is a trusted proxy, so the client's X-Forwarded-*
	// headers are kept and extended rather than replaced.
	trusted bool
	// priorFor are the X-Forwarded-For values received from a trusted peer.
	priorFor []string
	// realIP is the client address: the peer, or for a trusted peer the
	// right-most untrusted X-Forwarded-For entry.
	realIP string
	proto  string
	port   int
}

// peerHost returns the host part of a RemoteAddr without allocating.
func peerHost(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

func (t *trust) forwarded(req *http.Request) forwarded {
	f := forwarded{peerIP: peerHost(req.RemoteAddr), proto: "http"}
	if req.TLS != nil {
		f.proto = "https"
	}
	if a, ok := req.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		f.port = a.Port
	}
	f.realIP = f.peerIP
	if len(t.prefixes) == 0 {
		return f
	}
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err != nil || !t.trusted(ap.Addr()) {
		return f
	}
	f.trusted = true
	f.priorFor = req.Header[hdrXForwardedFor]
	// Walk X-Forwarded-For from the right: the first address that is not a
	// trusted proxy is the client.
	for i := len(f.priorFor) - 1; i >= 0; i-- {
		v := f.priorFor[i]
		for v != "" {
			var tok string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				tok, v = strings.TrimSpace(v[j+1:]), v[:j]
			} else {
				tok, v = strings.TrimSpace(v), ""
			}
			a, err := netip.ParseAddr(tok)
			if err != nil {
				return f // garbage: stop at the last address we could read
			}
			f.realIP = tok
			if !t.trusted(a) {
				return f
			}
		}
	}
	return f
}

// setForwardedHeaders writes the forwarding headers into h (the slow path
// used for upgrades via httputil.ReverseProxy).
func (f *forwarded) setHeaders(in *http.Request, h http.Header) {
	xff := f.peerIP
	if f.trusted && len(f.priorFor) > 0 {
		xff = strings.Join(f.priorFor, ", ") + ", " + f.peerIP
	}
	h.Set(hdrXForwardedFor, xff)
	h.Set(hdrXRealIP, f.realIP)
	keep := func(k, v string) {
		if f.trusted && in.Header.Get(k) != "" {
			h.Set(k, in.Header.Get(k))
			return
		}
		h.Set(k, v)
	}
	keep(hdrXForwardedHost, in.Host)
	keep(hdrXForwardedProto, f.proto)
	if f.port != 0 {
		keep(hdrXForwardedPort, strconv.Itoa(f.port))
	}
}

// requestIDs generates X-Request-Id values: a random per-process prefix and
// a counter, unique without a random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:])}
}

// appendNext appends a new id to dst.
func (g *requestIDs) appendNext(dst []byte) []byte {
	dst = append(dst, g.prefix...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, g.n.Add(1), 16)
}

// validRequestID accepts a client's X-Request-Id if it is short and plain.
func validRequestID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
