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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// testCA is a certificate authority for upstream TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	return issueCA(t, cn, nil)
}

// issueCA returns a CA signed by parent, or self-signed when parent is nil.
func issueCA(t *testing.T, cn string, parent *testCA) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	signer, signKey := tmpl, k
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM leaf (followed by ca's own certificate when chain)
// and key for names, for servers or clients.
func (ca *testCA) issue(t *testing.T, cn string, client, chain bool, names ...string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	crt = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if chain {
		crt = append(crt, ca.pem...)
	}
	return crt, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// tlsBackend starts a TLS backend with a certificate from ca for names
// (chain adds ca's certificate to the served chain). With clientCA set it
// requires a client certificate signed by it. It records the TLS state of
// every request it serves; http2 enables HTTP/2 by ALPN.
type tlsBackend struct {
	*httptest.Server
	requests   atomic.Int32
	conns      atomic.Int32 // connections that served a request
	seen       sync.Map     // remote addresses of those connections
	serverName atomic.Value // last SNI seen
	clientCN   atomic.Value // last client certificate CN seen
}

func newTLSBackend(t *testing.T, ca *testCA, chain bool, clientCA *testCA, http2 bool, h http.Handler, names ...string) *tlsBackend {
	t.Helper()
	crt, key := ca.issue(t, "backend", false, chain, names...)
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	b := &tlsBackend{}
	b.serverName.Store("")
	b.clientCN.Store("")
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "tls backend "+r.Proto)
		})
	}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		// Counted here, not in ConnState: a failed handshake of an earlier
		// case may be accepted late and must not count as a connection.
		if _, loaded := b.seen.LoadOrStore(r.RemoteAddr, true); !loaded {
			b.conns.Add(1)
		}
		b.serverName.Store(r.TLS.ServerName)
		if len(r.TLS.PeerCertificates) > 0 {
			b.clientCN.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		h.ServeHTTP(w, r)
	}))
	b.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		b.TLS.ClientAuth, b.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	b.EnableHTTP2 = http2
	b.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// upstreamSecret is the instance Secret data of a proxy-ssl-secret and its
// pinned UpstreamTLS (without the verify settings).
func upstreamSecret(secret string, ca, crt, key []byte) (map[string][]byte, snapshot.UpstreamTLS) {
	data := map[string][]byte{}
	u := snapshot.UpstreamTLS{Secret: secret}
	if ca != nil {
		data[snapshot.CADataKey(secret)] = ca
		u.CAHash = snapshot.DataHash(ca)
	}
	if crt != nil {
		ck, kk := snapshot.CertificateDataKeys(secret)
		data[ck], data[kk] = crt, key
		u.CertHash = snapshot.CertificateHash(crt, key)
	}
	return data, u
}

// upstreamRoute is oneRoute with an upstream protocol and TLS settings.
func upstreamRoute(name, protocol string, tlsSettings *snapshot.UpstreamTLS, endpoints ...string) *snapshot.Snapshot {
	s := oneRoute(name, endpoints...)
	s.Hosts[0].Routes[0].Upstream = &snapshot.Upstream{Protocol: protocol, TLS: tlsSettings}
	return s
}

func TestHTTPSUpstream(t *testing.T) {
	ca, other, clientCA := newTestCA(t, "upstream-ca"), newTestCA(t, "other-ca"), newTestCA(t, "client-ca")
	inter := issueCA(t, "intermediate", ca)
	clientCrt, clientKey := clientCA.issue(t, "gateway-client", true, false)
	strangerCrt, strangerKey := other.issue(t, "stranger", true, false)

	plain := newTLSBackend(t, ca, false, nil, false, nil, "backend.test", "web.ns.svc")
	mtls := newTLSBackend(t, ca, false, clientCA, false, nil, "backend.test")
	chained := newTLSBackend(t, inter, true, nil, false, nil, "backend.test")

	type tc struct {
		backend  *tlsBackend
		data     map[string][]byte // nil: SetTLSData not called
		settings *snapshot.UpstreamTLS
		wantCode int
		wantSNI  string
		wantCN   string
		// wantErr is the MetricUpstreamTLSErrors reason that must grow.
		wantErr string
	}
	with := func(secret string, caPEM, crt, key []byte, mut func(*snapshot.UpstreamTLS)) (map[string][]byte, *snapshot.UpstreamTLS) {
		data, u := upstreamSecret(secret, caPEM, crt, key)
		if mut != nil {
			mut(&u)
		}
		return data, &u
	}
	verifyAs := func(name string) func(*snapshot.UpstreamTLS) {
		return func(u *snapshot.UpstreamTLS) { u.Verify, u.ServerName = true, name }
	}
	tests := map[string]func() tc{
		"verify on, right CA": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, verifyAs("backend.test"))
			return tc{backend: plain, data: d, settings: s, wantCode: 200}
		},
		"verify on, wrong CA": func() tc {
			d, s := with("ns/up", other.pem, nil, nil, verifyAs("backend.test"))
			return tc{backend: plain, data: d, settings: s, wantCode: 502, wantErr: ReasonHandshake}
		},
		"verify on, wrong name": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, verifyAs("other.test"))
			return tc{backend: plain, data: d, settings: s, wantCode: 502, wantErr: ReasonHandshake}
		},
		"verify on, default name is the Service DNS name": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, func(u *snapshot.UpstreamTLS) { u.Verify = true })
			return tc{backend: plain, data: d, settings: s, wantCode: 200}
		},
		"verify on, system roots do not know the test CA": func() tc {
			return tc{backend: plain, settings: &snapshot.UpstreamTLS{Verify: true, ServerName: "backend.test"}, wantCode: 502, wantErr: ReasonHandshake}
		},
		"verify off encrypts without checking": func() tc {
			return tc{backend: plain, wantCode: 200}
		},
		"SNI on sends the name": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, func(u *snapshot.UpstreamTLS) { u.Verify, u.ServerName, u.SNI = true, "backend.test", true })
			return tc{backend: plain, data: d, settings: s, wantCode: 200, wantSNI: "backend.test"}
		},
		"TLS 1.3 only with AEAD suites": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, func(u *snapshot.UpstreamTLS) {
				u.Verify, u.ServerName, u.Protocols = true, "backend.test", []string{snapshot.TLSv13}
				u.Ciphers = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
			})
			return tc{backend: plain, data: d, settings: s, wantCode: 200}
		},
		"mTLS with the Secret's client certificate": func() tc {
			d, s := with("ns/up", ca.pem, clientCrt, clientKey, verifyAs("backend.test"))
			return tc{backend: mtls, data: d, settings: s, wantCode: 200, wantCN: "gateway-client"}
		},
		"mTLS without a client certificate": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, verifyAs("backend.test"))
			// With TLS 1.3 the server refuses the missing certificate after
			// the client's handshake is done: the request fails on read.
			return tc{backend: mtls, data: d, settings: s, wantCode: 502}
		},
		"mTLS with a certificate the backend does not trust": func() tc {
			d, s := with("ns/up", ca.pem, strangerCrt, strangerKey, verifyAs("backend.test"))
			return tc{backend: mtls, data: d, settings: s, wantCode: 502}
		},
		"CA missing from the Secret data: 502, never unverified": func() tc {
			_, s := with("ns/up", ca.pem, nil, nil, verifyAs("backend.test"))
			return tc{backend: plain, data: map[string][]byte{}, settings: s, wantCode: 502, wantErr: ReasonMissing}
		},
		"CA not matching its pin: 502": func() tc {
			_, s := with("ns/up", ca.pem, nil, nil, verifyAs("backend.test"))
			d, _ := upstreamSecret("ns/up", other.pem, nil, nil)
			return tc{backend: plain, data: d, settings: s, wantCode: 502, wantErr: ReasonHashMismatch}
		},
		"Secret data not read yet: 502": func() tc {
			_, s := with("ns/up", ca.pem, nil, nil, verifyAs("backend.test"))
			return tc{backend: plain, settings: s, wantCode: 502}
		},
		"chain within verify depth": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, func(u *snapshot.UpstreamTLS) { u.Verify, u.ServerName, u.VerifyDepth = true, "backend.test", 2 })
			return tc{backend: chained, data: d, settings: s, wantCode: 200}
		},
		"chain deeper than verify depth": func() tc {
			d, s := with("ns/up", ca.pem, nil, nil, func(u *snapshot.UpstreamTLS) { u.Verify, u.ServerName, u.VerifyDepth = true, "backend.test", 1 })
			return tc{backend: chained, data: d, settings: s, wantCode: 502, wantErr: ReasonHandshake}
		},
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			c := mk()
			reg := prometheus.NewRegistry()
			p, front := newProxy(t, reg)
			if c.data != nil {
				p.SetTLSData(c.data)
			}
			before, beforeConns := c.backend.requests.Load(), c.backend.conns.Load()
			p.Swap(compile(t, upstreamRoute("ns/web:443", snapshot.ProtocolHTTPS, c.settings, addr(c.backend.Server))))
			for i := range 2 { // the second request reuses the connection
				resp, body := get(t, front.Client(), front.URL+"/x", nil)
				if resp.StatusCode != c.wantCode {
					t.Fatalf("request %d: status %d (%q), want %d", i, resp.StatusCode, body, c.wantCode)
				}
				if c.wantCode == 200 && body != "tls backend HTTP/1.1" {
					t.Fatalf("body %q: the request did not reach the backend over TLS", body)
				}
			}
			served := c.backend.requests.Load() - before
			if c.wantCode == 200 && served != 2 || c.wantCode != 200 && served != 0 {
				t.Errorf("backend served %d requests", served)
			}
			if c.wantCode == 200 {
				if n := c.backend.conns.Load() - beforeConns; n != 1 {
					t.Errorf("%d TLS connections for 2 requests, want 1 (keep-alive reuse)", n)
				}
				if sni := c.backend.serverName.Load(); sni != c.wantSNI {
					t.Errorf("backend saw SNI %q, want %q", sni, c.wantSNI)
				}
				if cn := c.backend.clientCN.Load(); c.wantCN != "" && cn != c.wantCN {
					t.Errorf("backend saw client certificate %q, want %q", cn, c.wantCN)
				}
			}
			if c.wantErr != "" {
				if n := testutil.ToFloat64(p.upstreams.errs.WithLabelValues(c.wantErr)); n < 1 {
					t.Errorf("%s{reason=%s} = %v, want > 0", MetricUpstreamTLSErrors, c.wantErr, n)
				}
			}
		})
	}
}

// The Secret arriving after the snapshot (the controller writes the
// ConfigMap first) heals the route; a later rotation of the CA pinned by a
// new snapshot is picked up without a restart.
func TestHTTPSUpstreamMaterialArrivesLater(t *testing.T) {
	ca, ca2 := newTestCA(t, "ca-1"), newTestCA(t, "ca-2")
	b1 := newTLSBackend(t, ca, false, nil, false, nil, "backend.test")
	b2 := newTLSBackend(t, ca2, false, nil, false, nil, "backend.test")
	p, front := newProxy(t, nil)
	data, u := upstreamSecret("ns/up", ca.pem, nil, nil)
	u.Verify, u.ServerName = true, "backend.test"
	p.SetTLSData(map[string][]byte{})
	p.Swap(compile(t, upstreamRoute("ns/web:443", snapshot.ProtocolHTTPS, &u, addr(b1.Server))))
	if resp, _ := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 502 {
		t.Fatalf("before the Secret: status %d, want 502", resp.StatusCode)
	}
	p.SetTLSData(data)
	if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("after the Secret: status %d (%q), want 200", resp.StatusCode, body)
	}

	// Rotation: the backend moves to ca2, the Secret and snapshot follow.
	data2, u2 := upstreamSecret("ns/up", ca2.pem, nil, nil)
	u2.Verify, u2.ServerName = true, "backend.test"
	p.SetTLSData(data2)
	// The old snapshot still pins ca: its loaded material keeps serving.
	if resp, _ := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("Secret ahead of the snapshot: status %d, want 200 with the previous CA", resp.StatusCode)
	}
	p.Swap(compile(t, upstreamRoute("ns/web:443", snapshot.ProtocolHTTPS, &u2, addr(b2.Server))))
	if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 || b2.requests.Load() != 1 {
		t.Fatalf("after the rotation: status %d (%q), backend 2 requests %d", resp.StatusCode, body, b2.requests.Load())
	}
}

// A plain HTTP route to a TLS port fails; an HTTPS route to a plain port
// fails too: nothing is sent in clear where TLS was asked for.
func TestHTTPSUpstreamNeverPlaintext(t *testing.T) {
	var got atomic.Int32
	plainBackend := backendFunc(t, func(w http.ResponseWriter, r *http.Request) { got.Add(1) })
	p, front := newProxy(t, nil)
	p.Swap(compile(t, upstreamRoute("ns/web:80", snapshot.ProtocolHTTPS, nil, addr(plainBackend))))
	if resp, _ := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 502 || got.Load() != 0 {
		t.Fatalf("HTTPS route to a plain backend: status %d, backend requests %d", resp.StatusCode, got.Load())
	}
}

// A WebSocket-style upgrade on an HTTPS route goes over TLS too.
func TestHTTPSUpstreamUpgrade(t *testing.T) {
	ca := newTestCA(t, "ca")
	b := newTLSBackend(t, ca, false, nil, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}), "backend.test")
	p, front := newProxy(t, nil)
	data, u := upstreamSecret("ns/up", ca.pem, nil, nil)
	u.Verify, u.ServerName = true, "backend.test"
	p.SetTLSData(data)
	p.Swap(compile(t, upstreamRoute("ns/web:443", snapshot.ProtocolHTTPS, &u, addr(b.Server))))

	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	buf := make([]byte, 4096)
	n, err := io.ReadAtLeast(conn, buf, 12)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 101") {
		t.Fatalf("upgrade answer %q, %v", buf[:n], err)
	}
	_, _ = io.WriteString(conn, "hello\n")
	var rest strings.Builder
	for !strings.Contains(rest.String(), "echo: hello") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read after upgrade: %v (got %q)", err, rest.String())
		}
		rest.Write(buf[:n])
	}
	if b.requests.Load() != 1 {
		t.Errorf("TLS backend saw %d requests", b.requests.Load())
	}
}

func TestDefaultServerName(t *testing.T) {
	tests := map[string]struct {
		b    snapshot.Backend
		want string
	}{
		"service port by number": {b: snapshot.Backend{Name: "shop/api:443", Endpoints: []string{"10.0.0.1:8443"}}, want: "api.shop.svc"},
		"service port by name":   {b: snapshot.Backend{Name: "shop/api:https"}, want: "api.shop.svc"},
		"ExternalName":           {b: snapshot.Backend{Name: "shop/payments:443", Endpoints: []string{"API.Payments.example.:443"}}, want: "api.payments.example"},
		"IPv6 endpoint":          {b: snapshot.Backend{Name: "shop/api:443", Endpoints: []string{"[fd00::1]:8443"}}, want: "api.shop.svc"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := defaultServerName(&tc.b); got != tc.want {
				t.Errorf("defaultServerName = %q, want %q", got, tc.want)
			}
		})
	}
}
