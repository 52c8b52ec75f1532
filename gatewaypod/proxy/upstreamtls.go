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
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// MetricUpstreamTLSErrors counts upstream TLS problems by reason: key
// material missing from or not matching the TLS Secret, material that does
// not parse, and failed handshakes (e.g. an upstream certificate that does
// not verify).
const MetricUpstreamTLSErrors = "portico_gatewaypod_upstream_tls_errors_total"

// ReasonHandshake is the MetricUpstreamTLSErrors reason of a failed TLS
// handshake with an upstream; the others are the CertStore's reasons.
const ReasonHandshake = "Handshake"

// errUpstreamTLSUnavailable: a route's TLS material is not loaded, so it is
// answered 502 rather than sent without TLS or verification.
var errUpstreamTLSUnavailable = errors.New("upstream TLS material not available")

// upstreams holds one upstreamConfig per distinct (protocol, TLS settings,
// backend) and the instance Secret's data they load key material from.
// Configs, and the connection pools behind them, survive snapshot swaps as
// long as their key is the same.
type upstreams struct {
	dialer      *net.Dialer
	idleTimeout time.Duration
	readTimeout time.Duration
	log         *slog.Logger
	errs        *prometheus.CounterVec

	mu      sync.Mutex
	data    map[string][]byte
	configs map[string]*upstreamConfig
}

func newUpstreams(dialer *net.Dialer, idleTimeout, readTimeout time.Duration, log *slog.Logger) *upstreams {
	u := &upstreams{dialer: dialer, idleTimeout: idleTimeout, readTimeout: readTimeout, log: log,
		configs: map[string]*upstreamConfig{},
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamTLSErrors,
			Help: "Upstream TLS problems by reason (material Missing, HashMismatch or Invalid; failed Handshake); the route answers 502.",
		}, []string{"reason"}),
	}
	for _, r := range []string{ReasonHashMismatch, ReasonMissing, ReasonInvalid, ReasonHandshake} {
		u.errs.WithLabelValues(r)
	}
	return u
}

// upstreamConfig is how to reach one backend for one route configuration:
// TLS (HTTPS, GRPCS) and/or HTTP/2 (GRPC, GRPCS). HTTP routes have none.
type upstreamConfig struct {
	key      string
	backend  string
	protocol string
	settings snapshot.UpstreamTLS // zero for GRPC
	name     string               // name verified (and sent by SNI)
	u        *upstreams
	gen      atomic.Pointer[upstreamGen]
}

// upstreamGen is one generation of a config, built from one version of the
// key material.
type upstreamGen struct {
	material string      // hashes the generation was built from
	tls      *tls.Config // nil for GRPC (h2c)
	err      error       // set when the material is unusable: requests get 502
	// rt carries GRPC/GRPCS requests (HTTP/2) and, for HTTPS, upgrade
	// requests (HTTP/1.1 over TLS).
	rt *http.Transport
}

func (c *upstreamConfig) secure() bool {
	return c.protocol == snapshot.ProtocolHTTPS || c.protocol == snapshot.ProtocolGRPCS
}

func (c *upstreamConfig) http2() bool {
	return c.protocol == snapshot.ProtocolGRPC || c.protocol == snapshot.ProtocolGRPCS
}

// scheme is the URL scheme for the net/http transport.
func (c *upstreamConfig) scheme() string {
	if c.secure() {
		return "https"
	}
	return "http"
}

// config returns the config of u for backend b, nil for plain HTTP.
func (us *upstreams) config(u *snapshot.Upstream, b *snapshot.Backend) *upstreamConfig {
	if u == nil || u.Protocol == "" || u.Protocol == snapshot.ProtocolHTTP {
		return nil
	}
	var settings snapshot.UpstreamTLS
	if u.TLS != nil {
		settings = *u.TLS
	}
	backend := b.Name
	name := settings.ServerName
	if name == "" {
		name = defaultServerName(b)
	}
	js, _ := json.Marshal(&settings) // a plain struct: cannot fail
	key := u.Protocol + "|" + backend + "|" + name + "|" + string(js)
	us.mu.Lock()
	defer us.mu.Unlock()
	if c := us.configs[key]; c != nil {
		return c
	}
	c := &upstreamConfig{key: key, backend: backend, protocol: u.Protocol, settings: settings, name: name, u: us}
	c.gen.Store(c.build(us.data, nil))
	us.configs[key] = c
	return c
}

// setData records the instance Secret's data and reloads every config whose
// material changed.
func (us *upstreams) setData(data map[string][]byte) {
	us.mu.Lock()
	defer us.mu.Unlock()
	us.data = data
	for _, c := range us.configs {
		old := c.gen.Load()
		next := c.build(data, old)
		if next != old {
			c.gen.Store(next)
			if old.rt != nil {
				old.rt.CloseIdleConnections()
			}
		}
	}
}

// sweep drops the configs of backends no longer served.
func (us *upstreams) sweep(backends []string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	for k, c := range us.configs {
		if !slices.Contains(backends, c.backend) {
			delete(us.configs, k)
			if g := c.gen.Load(); g.rt != nil {
				g.rt.CloseIdleConnections()
			}
		}
	}
}

func (us *upstreams) closeIdle() {
	us.mu.Lock()
	defer us.mu.Unlock()
	for _, c := range us.configs {
		if g := c.gen.Load(); g.rt != nil {
			g.rt.CloseIdleConnections()
		}
	}
}

// build returns the generation for data: prev when the material did not
// change, prev (kept serving) when the new material is missing or does not
// match its pin but prev works, else a new one (possibly failed).
func (c *upstreamConfig) build(data map[string][]byte, prev *upstreamGen) *upstreamGen {
	var m snapshot.UpstreamTLSMaterial
	if c.settings.Secret != "" {
		var err error
		m, err = c.settings.Material(data)
		if err != nil {
			reason := ReasonMissing
			if errors.Is(err, snapshot.ErrUpstreamTLSHashMismatch) {
				reason = ReasonHashMismatch
			}
			if data != nil { // before the Secret's first read nothing is missing yet
				c.u.errs.WithLabelValues(reason).Inc()
				c.u.log.Warn("Upstream TLS material not loaded", "backend", c.backend, "secret", c.settings.Secret,
					"reason", reason, "err", err, "keptPrevious", prev != nil && prev.err == nil)
			}
			if prev != nil && prev.err == nil {
				return prev
			}
			return &upstreamGen{err: fmt.Errorf("%w: %v", errUpstreamTLSUnavailable, err)}
		}
	}
	material := c.settings.CAHash + "/" + c.settings.CertHash
	if prev != nil && prev.err == nil && prev.material == material {
		return prev
	}
	g := &upstreamGen{material: material}
	if c.secure() {
		cfg, err := c.tlsConfig(m)
		if err != nil {
			c.u.errs.WithLabelValues(ReasonInvalid).Inc()
			c.u.log.Warn("Upstream TLS material not loaded", "backend", c.backend, "secret", c.settings.Secret, "reason", ReasonInvalid, "err", err)
			return &upstreamGen{err: fmt.Errorf("%w: %v", errUpstreamTLSUnavailable, err)}
		}
		g.tls = cfg
	}
	g.rt = c.transport(g.tls)
	return g
}

// tlsConfig builds the client TLS configuration: TLS 1.2+ (or the chosen
// versions), the allowed suites, the client certificate, and verification
// of the chain against the Secret's CA (system roots without one) and of
// ServerName, with the verify depth.
func (c *upstreamConfig) tlsConfig(m snapshot.UpstreamTLSMaterial) (*tls.Config, error) {
	s := &c.settings
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done by VerifyConnection, so the verified name
		// can differ from the name sent by SNI (or none be sent).
		InsecureSkipVerify: true, //nolint:gosec // see VerifyConnection
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if c.http2() {
		cfg.NextProtos = []string{"h2"}
	} else {
		cfg.NextProtos = []string{"http/1.1"}
	}
	if s.SNI && net.ParseIP(c.name) == nil {
		cfg.ServerName = c.name
	}
	if len(s.Protocols) > 0 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
		for _, p := range s.Protocols {
			v := uint16(tls.VersionTLS12)
			if p == snapshot.TLSv13 {
				v = tls.VersionTLS13
			}
			cfg.MinVersion, cfg.MaxVersion = min(cfg.MinVersion, v), max(cfg.MaxVersion, v)
		}
	}
	for _, name := range s.Ciphers {
		for _, cs := range tls.CipherSuites() {
			if cs.Name == name {
				cfg.CipherSuites = append(cfg.CipherSuites, cs.ID)
			}
		}
	}
	if m.Cert != nil {
		cert, err := tls.X509KeyPair(m.Cert, m.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate of Secret %s: %w", s.Secret, err)
		}
		// Always present it, as nginx does, whatever CAs the upstream lists.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if !s.Verify {
		return cfg, nil
	}
	var roots *x509.CertPool // nil: system roots
	if m.CA != nil {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(m.CA) {
			return nil, fmt.Errorf("ca.crt of Secret %s holds no PEM certificate", s.Secret)
		}
	}
	name, depth := c.name, s.VerifyDepth
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("upstream sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		chains, err := cs.PeerCertificates[0].Verify(opts)
		if err != nil {
			return err
		}
		if depth > 0 && !slices.ContainsFunc(chains, func(ch []*x509.Certificate) bool { return len(ch)-1 <= depth }) {
			return fmt.Errorf("upstream certificate chain is longer than proxy-ssl-verify-depth %d", depth)
		}
		return nil
	}
	return cfg, nil
}

// transport returns the net/http transport of a generation: HTTP/2 (h2c
// prior knowledge for GRPC, ALPN h2 for GRPCS), or HTTP/1.1 over TLS for
// upgrade requests on HTTPS routes.
func (c *upstreamConfig) transport(cfg *tls.Config) *http.Transport {
	protos := new(http.Protocols)
	switch c.protocol {
	case snapshot.ProtocolGRPC:
		protos.SetUnencryptedHTTP2(true)
	case snapshot.ProtocolGRPCS:
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	dialer := c.u.dialer
	handshakeErrs := c.u.errs.WithLabelValues(ReasonHandshake)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialFor(ctx, dialer).DialContext(ctx, network, addr)
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   dialer.Timeout,
		Protocols:             protos,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       c.u.idleTimeout,
		ResponseHeaderTimeout: c.u.readTimeout,
		DisableCompression:    true,
	}
	if c.http2() {
		t.ResponseHeaderTimeout = 0 // serveHTTP2 applies the route's read timeout
	}
	if cfg != nil {
		// Count failed handshakes: dial and handshake here, so the error is
		// seen; net/http then speaks the negotiated protocol on the conn.
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := dialFor(ctx, dialer)
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc, err := handshake(ctx, raw, cfg, d.Timeout)
			if err != nil {
				handshakeErrs.Inc()
				return nil, err
			}
			return tc, nil
		}
	}
	return t
}

// handshake runs the client TLS handshake on raw within timeout, closing
// raw on failure.
func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	tc := tls.Client(raw, cfg)
	if timeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(timeout))
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("upstream TLS handshake: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	return tc, nil
}

// dialTLS wraps a fresh connection of the HTTP/1.1 fast path in TLS (HTTPS
// routes). A route whose material is not loaded gets a *failure with 502,
// which does not count against the endpoint.
func (c *upstreamConfig) dialTLS(ctx context.Context, raw net.Conn, timeout time.Duration) (net.Conn, error) {
	g := c.gen.Load()
	if g.err != nil {
		_ = raw.Close()
		return nil, &failure{err: g.err, status: http.StatusBadGateway}
	}
	tc, err := handshake(ctx, raw, g.tls, timeout)
	if err != nil {
		c.u.errs.WithLabelValues(ReasonHandshake).Inc()
		return nil, err
	}
	return tc, nil
}

// defaultServerName is the name verified in an upstream certificate when
// the route sets none: the external name of an ExternalName Service (its
// endpoint is a DNS name), else the Service's DNS name
// "service.namespace.svc" from the backend name "namespace/service:port".
func defaultServerName(b *snapshot.Backend) string {
	if len(b.Endpoints) > 0 {
		if h, _, err := net.SplitHostPort(b.Endpoints[0]); err == nil && net.ParseIP(h) == nil {
			return strings.TrimSuffix(strings.ToLower(h), ".")
		}
	}
	ns, rest, ok := strings.Cut(b.Name, "/")
	if !ok {
		return b.Name
	}
	svc, _, _ := strings.Cut(rest, ":")
	return svc + "." + ns + ".svc"
}
