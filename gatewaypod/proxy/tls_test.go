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
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// selfSigned returns a PEM chain and key for names, valid for an hour.
func selfSigned(t testing.TB, cn string, names ...string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

type testCert struct {
	secret   string
	crt, key []byte
	hosts    []string
}

func (c testCert) pinned() snapshot.Certificate {
	return snapshot.Certificate{Secret: c.secret, Hash: snapshot.CertificateHash(c.crt, c.key), Hosts: c.hosts}
}

func secretData(certs ...testCert) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range certs {
		ck, kk := snapshot.CertificateDataKeys(c.secret)
		out[ck], out[kk] = c.crt, c.key
	}
	return out
}

// tlsFront serves p over TLS from store on 127.0.0.1.
func tlsFront(t *testing.T, p *Proxy, store *CertStore) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, TLSConfig: store.TLSConfig(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// peerCN connects with SNI name and returns the served certificate's CN
// and the negotiated protocol of one proxied GET.
func peerCN(t *testing.T, front, name string) (cn, proto, fwdProto string, err error) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: name},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "https://"+front+"/", nil)
	req.Host = name
	resp, err := c.Do(req)
	if err != nil {
		return "", "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e := decodeEcho(t, string(b))
	return resp.TLS.PeerCertificates[0].Subject.CommonName, resp.Proto, e.Header.Get("X-Forwarded-Proto"), nil
}

func TestTLSTermination(t *testing.T) {
	b := newBackend(t, "b")
	a := testCert{secret: "ns/a"}
	a.crt, a.key = selfSigned(t, "a", "a.test")
	w := testCert{secret: "ns/w"}
	w.crt, w.key = selfSigned(t, "w", "*.w.test")
	s := oneRoute("b", addr(b))
	a.hosts, w.hosts = []string{"a.test"}, []string{"*.w.test"}
	s.Certificates = []snapshot.Certificate{a.pinned(), w.pinned()}
	p, _ := newProxy(t, nil)
	p.Swap(compile(t, s))
	reg := prometheus.NewRegistry()
	store, err := NewCertStore(func(n string) *snapshot.Certificate { return p.Router().Certificate(n) }, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	front := tlsFront(t, p, store)

	// No certificate yet: the handshake fails.
	store.SetCertificates(s.Certificates)
	if _, _, _, err := peerCN(t, front, "a.test"); err == nil {
		t.Fatal("handshake without certificates succeeded")
	}
	store.SetData(secretData(a, w))
	for _, tc := range []struct{ sni, cn string }{
		{"a.test", "a"}, {"x.w.test", "w"}, {"A.TEST", "a"}, {"other.test", "a"}, {"x.y.w.test", "a"},
	} {
		cn, proto, fwd, err := peerCN(t, front, tc.sni)
		if err != nil {
			t.Fatalf("%s: %v", tc.sni, err)
		}
		if cn != tc.cn || proto != "HTTP/2.0" || fwd != "https" {
			t.Errorf("SNI %s: cert %s proto %s X-Forwarded-Proto %s, want %s HTTP/2.0 https", tc.sni, cn, proto, fwd, tc.cn)
		}
	}

	// The Secret changes before the snapshot: the pin does not match, the
	// old certificate keeps serving and the mismatch is counted.
	a2 := testCert{secret: "ns/a", hosts: a.hosts}
	a2.crt, a2.key = selfSigned(t, "a2", "a.test")
	store.SetData(secretData(a2, w))
	if cn, _, _, _ := peerCN(t, front, "a.test"); cn != "a" {
		t.Errorf("after an unpinned Secret update: cert %s, want the old a", cn)
	}
	if got := testutil.ToFloat64(store.errs.WithLabelValues(ReasonHashMismatch)); got != 1 {
		t.Errorf("hash mismatches = %v, want 1", got)
	}
	// The snapshot pinning the new bytes arrives: swapped without restart.
	s2 := *s
	s2.Certificates = []snapshot.Certificate{a2.pinned(), w.pinned()}
	p.Swap(compile(t, &s2))
	store.SetCertificates(s2.Certificates)
	if cn, _, _, _ := peerCN(t, front, "a.test"); cn != "a2" {
		t.Errorf("after the pinned update: cert %s, want a2", cn)
	}
	if got := testutil.ToFloat64(store.loaded); got != 2 {
		t.Errorf("loaded = %v", got)
	}

	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", front, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, ServerName: "a.test"})
	if err == nil {
		conn.Close()
		t.Error("TLS 1.1 handshake succeeded")
	}
}

// TestTLSWithoutHTTP2: with http2 false, a client asking for h2 by ALPN is
// answered over HTTP/1.1.
func TestTLSWithoutHTTP2(t *testing.T) {
	b := newBackend(t, "b")
	a := testCert{secret: "ns/a", hosts: []string{"a.test"}}
	a.crt, a.key = selfSigned(t, "a", "a.test")
	s := oneRoute("b", addr(b))
	s.Certificates = []snapshot.Certificate{a.pinned()}
	p, _ := newProxy(t, nil)
	p.Swap(compile(t, s))
	store, err := NewCertStore(func(n string) *snapshot.Certificate { return p.Router().Certificate(n) }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store.SetCertificates(s.Certificates)
	store.SetData(secretData(a))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, TLSConfig: store.TLSConfigFor(false), Protocols: ServerProtocols(false),
		ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	front := ln.Addr().String()

	conn, err := tls.Dial("tcp", front, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
		t.Errorf("ALPN negotiated %q, want http/1.1", got)
	}
	conn.Close()
	cn, proto, fwd, err := peerCN(t, front, "a.test")
	if err != nil || cn != "a" || proto != "HTTP/1.1" || fwd != "https" {
		t.Errorf("GET with ForceAttemptHTTP2 = %s %s %s %v, want a HTTP/1.1 https", cn, proto, fwd, err)
	}
	if got := store.TLSConfigFor(true).NextProtos; !slices.Equal(got, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos with http2 = %v", got)
	}
}
