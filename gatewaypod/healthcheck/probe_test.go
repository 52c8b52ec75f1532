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

package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/internal/testcerts"
)

// testTLS is a TLSSource like the proxy's: roots verify the server as name
// (the check's host when set), cert is presented when asked for.
type testTLS struct {
	roots *x509.CertPool
	cert  *tls.Certificate
	name  string
	err   error
}

func (s *testTLS) ProbeTLS(host string) (*tls.Config, error) {
	if s.err != nil {
		return nil, s.err
	}
	cfg := &tls.Config{RootCAs: s.roots, ServerName: s.name, MinVersion: tls.VersionTLS12}
	if host != "" {
		cfg.ServerName = host
	}
	if s.cert != nil {
		cfg.Certificates = []tls.Certificate{*s.cert}
	}
	return cfg, nil
}

// pki is a server CA, a client CA, and certificates issued by them.
type pki struct {
	ca, other, clientCA *testcerts.Cert
	server              tls.Certificate // backend.test, health.test
	client, stranger    tls.Certificate
}

func newPKI(t testing.TB) *pki {
	p := &pki{
		ca:       testcerts.New(t, nil, testcerts.Options{CA: true, CommonName: "upstream-ca"}),
		other:    testcerts.New(t, nil, testcerts.Options{CA: true, CommonName: "other-ca"}),
		clientCA: testcerts.New(t, nil, testcerts.Options{CA: true, CommonName: "client-ca"}),
	}
	p.server = testcerts.New(t, p.ca, testcerts.Options{DNSNames: []string{"backend.test", "health.test"}}).TLS()
	p.client = testcerts.New(t, p.clientCA, testcerts.Options{Client: true, CommonName: "gateway"}).TLS()
	p.stranger = testcerts.New(t, p.other, testcerts.Options{Client: true, CommonName: "stranger"}).TLS()
	return p
}

func pool(c *testcerts.Cert) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// tlsHealth is an HTTPS backend whose /healthz answers code; it records
// the Host and SNI of the last probe. With clientCA it requires a client
// certificate signed by it.
type tlsHealth struct {
	*httptest.Server
	code      atomic.Int32
	host, sni atomic.Value
}

func newTLSHealth(t testing.TB, p *pki, clientCA *testcerts.Cert) *tlsHealth {
	b := &tlsHealth{}
	b.code.Store(http.StatusOK)
	b.host.Store("")
	b.sni.Store("")
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.host.Store(r.Host)
		b.sni.Store(r.TLS.ServerName)
		w.WriteHeader(int(b.code.Load()))
	}))
	b.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		b.TLS.ClientAuth, b.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool(clientCA)
	}
	b.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

func probeOnce(t *testing.T, addr string, c Check) error {
	t.Helper()
	cs := NewCheckers(balancer.NewRegistry(balancer.PassiveHealth{}), nil)
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	return cs.probe(context.Background(), CheckKey{Addr: addr, Check: c}, acceptedStatus(c.Status))
}

func TestHTTPSProbe(t *testing.T) {
	p := newPKI(t)
	plain := newTLSHealth(t, p, nil)
	mtls := newTLSHealth(t, p, p.clientCA)
	tests := map[string]struct {
		srv     *tlsHealth
		src     *testTLS
		host    string
		wantErr string // "" passes unless fails
		fails   bool   // fails in a way the TLS version decides (alert or broken pipe)
		// wantHost and wantSNI are what the backend saw ("" not checked).
		wantHost, wantSNI string
	}{
		"right CA":                {srv: plain, src: &testTLS{roots: pool(p.ca), name: "backend.test"}, wantSNI: "backend.test"},
		"wrong CA":                {srv: plain, src: &testTLS{roots: pool(p.other), name: "backend.test"}, wantErr: "certificate signed by unknown authority"},
		"wrong name":              {srv: plain, src: &testTLS{roots: pool(p.ca), name: "other.test"}, wantErr: "not other.test"},
		"material not loaded":     {srv: plain, src: &testTLS{err: errors.New("not loaded")}, wantErr: "not loaded"},
		"host is Host and SNI":    {srv: plain, src: &testTLS{roots: pool(p.ca), name: "backend.test"}, host: "health.test", wantHost: "health.test", wantSNI: "health.test"},
		"mTLS with the client":    {srv: mtls, src: &testTLS{roots: pool(p.ca), name: "backend.test", cert: &p.client}},
		"mTLS without a cert":     {srv: mtls, src: &testTLS{roots: pool(p.ca), name: "backend.test"}, fails: true},
		"mTLS with a stranger":    {srv: mtls, src: &testTLS{roots: pool(p.ca), name: "backend.test", cert: &p.stranger}, fails: true},
		"plain text to TLS fails": {srv: plain, wantErr: "400"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := Check{Path: "/healthz", Host: tc.host}
			if tc.src != nil {
				c.TLS = tc.src
			}
			err := probeOnce(t, tc.srv.Listener.Addr().String(), c)
			switch {
			case tc.fails && err == nil:
				t.Fatal("probe passed, want a failure")
			case !tc.fails && tc.wantErr == "" && err != nil:
				t.Fatalf("probe error %v, want a pass", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe error %v, want %q", err, tc.wantErr)
			}
			if tc.wantHost != "" && tc.srv.host.Load() != tc.wantHost {
				t.Errorf("backend saw Host %q, want %q", tc.srv.host.Load(), tc.wantHost)
			}
			if tc.wantSNI != "" && tc.srv.sni.Load() != tc.wantSNI {
				t.Errorf("backend saw SNI %q, want %q", tc.srv.sni.Load(), tc.wantSNI)
			}
		})
	}
}

func TestProbeHostDefaultsToAddress(t *testing.T) {
	var host atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) }))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, h := range []string{"", "health.test"} {
		if err := probeOnce(t, addr, Check{Path: "/", Host: h}); err != nil {
			t.Fatal(err)
		}
		want := h
		if h == "" {
			want = addr
		}
		if host.Load() != want {
			t.Errorf("Host %q with health-check-host %q, want %q", host.Load(), h, want)
		}
	}
}

func TestProbeAcceptedStatus(t *testing.T) {
	var code atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	tests := []struct {
		status string
		code   int
		pass   bool
	}{
		{"", 200, true}, {"", 302, true}, {"", 404, false},
		{"200", 200, true}, {"200", 204, false},
		{"200-299", 299, true}, {"200-299", 301, false},
		{"200,204,301-302", 204, true}, {"200,204,301-302", 302, true}, {"200,204,301-302", 303, false}, {"200,204,301-302", 201, false},
		{"404", 404, true}, {"500-599", 503, true}, {"500-599", 200, false},
	}
	for _, tc := range tests {
		code.Store(int32(tc.code))
		err := probeOnce(t, srv.Listener.Addr().String(), Check{Path: "/", Status: tc.status})
		if (err == nil) != tc.pass {
			t.Errorf("status %q, answer %d: probe error %v, want pass %v", tc.status, tc.code, err, tc.pass)
		}
	}
}

// grpcHealth starts a grpc-go server with the standard health service, in
// plain text (h2c) or with TLS (creds).
func grpcHealth(t testing.TB, creds credentials.TransportCredentials) (*health.Server, string) {
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return hs, ln.Addr().String()
}

func TestGRPCProbe(t *testing.T) {
	p := newPKI(t)
	hs, h2c := grpcHealth(t, nil)
	hsTLS, secure := grpcHealth(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool(p.clientCA)}))
	for _, s := range []*health.Server{hs, hsTLS} {
		s.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		s.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
		s.SetServingStatus("billing", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	good := &testTLS{roots: pool(p.ca), name: "backend.test", cert: &p.client}
	tests := map[string]struct {
		addr    string
		check   Check
		wantErr string
	}{
		"h2c, server":                      {addr: h2c, check: Check{GRPC: true}},
		"h2c, serving service":             {addr: h2c, check: Check{GRPC: true, Service: "orders"}},
		"h2c, not serving":                 {addr: h2c, check: Check{GRPC: true, Service: "billing"}, wantErr: "serving status 2"},
		"h2c, unknown service":             {addr: h2c, check: Check{GRPC: true, Service: "nope"}, wantErr: "grpc-status 5"},
		"h2c, host as authority":           {addr: h2c, check: Check{GRPC: true, Host: "health.test"}},
		"tls, mTLS serving":                {addr: secure, check: Check{GRPC: true, Service: "orders", TLS: good}},
		"tls, not serving":                 {addr: secure, check: Check{GRPC: true, Service: "billing", TLS: good}, wantErr: "serving status 2"},
		"tls, wrong CA":                    {addr: secure, check: Check{GRPC: true, TLS: &testTLS{roots: pool(p.other), name: "backend.test", cert: &p.client}}, wantErr: "unknown authority"},
		"tls, no client certificate fails": {addr: secure, check: Check{GRPC: true, TLS: &testTLS{roots: pool(p.ca), name: "backend.test"}}},
		"h2c to a TLS server fails":        {addr: secure, check: Check{GRPC: true}, wantErr: ""},
		"tls to an h2c server fails":       {addr: h2c, check: Check{GRPC: true, TLS: good}, wantErr: "handshake"},
		"http check on gRPC is no OK":      {addr: h2c, check: Check{Path: "/"}, wantErr: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := probeOnce(t, tc.addr, tc.check)
			fails := strings.HasSuffix(name, "fails") || strings.HasSuffix(name, "no OK")
			switch {
			case fails && err == nil:
				t.Fatal("probe passed, want a failure")
			case !fails && tc.wantErr == "" && err != nil:
				t.Fatalf("probe error %v, want a pass", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestGRPCMessages(t *testing.T) {
	if got := grpcRequest(""); string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("empty request = %q", got)
	}
	if got := grpcRequest("ab"); string(got) != "\x00\x00\x00\x00\x04\x0a\x02ab" {
		t.Errorf("request = %q", got)
	}
	tests := map[string]struct {
		in      string
		want    uint64
		wantErr bool
	}{
		"serving":               {in: "\x00\x00\x00\x00\x02\x08\x01", want: 1},
		"not serving":           {in: "\x00\x00\x00\x00\x02\x08\x02", want: 2},
		"empty is unknown":      {in: "\x00\x00\x00\x00\x00", want: 0},
		"unknown field skipped": {in: "\x00\x00\x00\x00\x06\x12\x02hi\x08\x01", want: 1},
		"compressed":            {in: "\x01\x00\x00\x00\x02\x08\x01", wantErr: true},
		"short":                 {in: "\x00\x00\x00", wantErr: true},
		"length mismatch":       {in: "\x00\x00\x00\x00\x05\x08\x01", wantErr: true},
		"truncated varint":      {in: "\x00\x00\x00\x00\x02\x08\x80", wantErr: true},
	}
	for name, tc := range tests {
		got, err := grpcServingStatus([]byte(tc.in))
		if (err != nil) != tc.wantErr || err == nil && got != tc.want {
			t.Errorf("%s: status %d, error %v; want %d, error %v", name, got, err, tc.want, tc.wantErr)
		}
	}
}

// BenchmarkProbe measures one probe of each kind against a local server:
// its latency and what it allocates (a connection, and a handshake with TLS).
func BenchmarkProbe(b *testing.B) {
	p := newPKI(b)
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.Cleanup(plain.Close)
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	secure.StartTLS()
	b.Cleanup(secure.Close)
	hs, h2c := grpcHealth(b, nil)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	src := &testTLS{roots: pool(p.ca), name: "backend.test"}
	cases := map[string]struct {
		addr  string
		check Check
	}{
		"tcp":        {addr: plain.Listener.Addr().String(), check: Check{}},
		"http":       {addr: plain.Listener.Addr().String(), check: Check{Path: "/"}},
		"https":      {addr: secure.Listener.Addr().String(), check: Check{Path: "/", TLS: src}},
		"grpc (h2c)": {addr: h2c, check: Check{GRPC: true}},
	}
	for name, c := range cases {
		b.Run(name, func(b *testing.B) {
			cs := NewCheckers(balancer.NewRegistry(balancer.PassiveHealth{}), nil)
			c.check.Timeout = 5 * time.Second
			key := CheckKey{Addr: c.addr, Check: c.check}
			b.ReportAllocs()
			for b.Loop() {
				if err := cs.probe(context.Background(), key, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
