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
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TLS metric names.
const (
	// MetricTLSCertificateErrors counts certificates that could not be
	// (re)loaded, by reason; the previous one for the Secret keeps serving.
	MetricTLSCertificateErrors = "portico_gatewaypod_tls_certificate_errors_total"
	// MetricTLSCertificates is the number of certificates loaded.
	MetricTLSCertificates = "portico_gatewaypod_tls_certificates"
)

// Reasons of MetricTLSCertificateErrors.
const (
	// ReasonHashMismatch: the Secret's bytes do not match the pinned hash
	// (normally a Secret and a snapshot update crossing; it heals itself).
	ReasonHashMismatch = "HashMismatch"
	// ReasonMissing: the Secret has no data for a certificate.
	ReasonMissing = "Missing"
	// ReasonInvalid: the bytes match the pin but do not parse.
	ReasonInvalid = "Invalid"
)

// CertStore serves the snapshot's certificates to a TLS listener. The
// snapshot's list (what to serve, pinned by hash) and the instance
// Secret's data (the bytes) arrive separately; each arrival rebuilds the
// set, and a certificate whose bytes do not match its pin keeps the one
// loaded before for the same Secret, so a crossing of the two updates never
// serves a wrong or missing certificate. The set is swapped atomically and
// GetCertificate reads it without locks.
type CertStore struct {
	set    atomic.Pointer[certSet]
	lookup func(serverName string) *snapshot.Certificate
	log    *slog.Logger
	errs   *prometheus.CounterVec
	loaded prometheus.Gauge

	mu    sync.Mutex // serializes rebuilds
	certs []snapshot.Certificate
	data  map[string][]byte
	cas   map[string]string // client CA Secret -> pinned hash (see SetClientCAs)

	clientAuth func(serverName string) *snapshot.ClientAuth // see SetClientAuthLookup
}

// certSet is one immutable generation of loaded certificates.
type certSet struct {
	bySecret map[string]*loadedCert
	def      *tls.Certificate // the first certificate of the snapshot
	cas      map[string]*loadedCA
}

type loadedCert struct {
	hash string
	cert *tls.Certificate
}

// NewCertStore returns an empty store. lookup is the SNI selection of the
// current router (see router.Certificate); nil selects the default.
func NewCertStore(lookup func(serverName string) *snapshot.Certificate, reg prometheus.Registerer, log *slog.Logger) (*CertStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &CertStore{
		lookup: lookup,
		log:    log,
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricTLSCertificateErrors,
			Help: "Certificates not (re)loaded, by reason; the previous certificate of the Secret keeps serving.",
		}, []string{"reason"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricTLSCertificates,
			Help: "TLS certificates loaded for the HTTPS listener.",
		}),
	}
	for _, r := range []string{ReasonHashMismatch, ReasonMissing, ReasonInvalid} {
		s.errs.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.errs, s.loaded} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.set.Store(&certSet{bySecret: map[string]*loadedCert{}})
	return s, nil
}

// SetCertificates records the snapshot's certificate list and rebuilds.
func (s *CertStore) SetCertificates(certs []snapshot.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.EqualFunc(s.certs, certs, func(a, b snapshot.Certificate) bool {
		return a.Secret == b.Secret && a.Hash == b.Hash && slices.Equal(a.Hosts, b.Hosts)
	}) && s.certs != nil {
		return
	}
	s.certs = slices.Clone(certs)
	s.rebuildLocked()
}

// SetData records the instance Secret's data and rebuilds.
func (s *CertStore) SetData(data map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = data
	s.rebuildLocked()
}

func (s *CertStore) rebuildLocked() {
	old := s.set.Load()
	next := &certSet{bySecret: make(map[string]*loadedCert, len(s.certs))}
	for _, c := range s.certs {
		lc, reason, err := s.load(c, old.bySecret[c.Secret])
		if err != nil {
			s.errs.WithLabelValues(reason).Inc()
			s.log.Warn("TLS certificate not loaded", "secret", c.Secret, "reason", reason, "err", err, "keptPrevious", lc != nil)
		}
		if lc == nil {
			continue
		}
		next.bySecret[c.Secret] = lc
		if next.def == nil {
			next.def = lc.cert
		}
	}
	s.loadCAsLocked(old, next)
	s.set.Store(next)
	s.loaded.Set(float64(len(next.bySecret)))
}

// load returns the certificate for c, or prev with the reason it could not
// be loaded from the current data.
func (s *CertStore) load(c snapshot.Certificate, prev *loadedCert) (*loadedCert, string, error) {
	if s.data == nil {
		return prev, "", nil // no data yet: not an error
	}
	ck, kk := snapshot.CertificateDataKeys(c.Secret)
	crt, okC := s.data[ck]
	key, okK := s.data[kk]
	if !okC || !okK {
		return prev, ReasonMissing, errors.New("no " + ck + "/" + kk + " in the TLS Secret")
	}
	if h := snapshot.CertificateHash(crt, key); h != c.Hash {
		return prev, ReasonHashMismatch, errors.New("hash " + h + " does not match the pinned " + c.Hash)
	}
	if prev != nil && prev.hash == c.Hash {
		return prev, "", nil // same bytes: no parse
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return prev, ReasonInvalid, err
	}
	return &loadedCert{hash: c.Hash, cert: &cert}, "", nil
}

// GetCertificate implements tls.Config.GetCertificate: the router's SNI
// choice (exact, then wildcard), else the default (the snapshot's first
// certificate); a handshake without any certificate fails.
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.set.Load()
	if s.lookup != nil {
		if c := s.lookup(hello.ServerName); c != nil {
			if lc := set.bySecret[c.Secret]; lc != nil {
				return lc.cert, nil
			}
		}
	}
	if set.def != nil {
		return set.def, nil
	}
	return nil, errors.New("no TLS certificate loaded")
}

// TLSConfig is the listener configuration: TLS 1.2+, certificates from s,
// HTTP/2 and HTTP/1.1 by ALPN.
func (s *CertStore) TLSConfig() *tls.Config { return s.TLSConfigFor(true) }

// TLSConfigFor is TLSConfig, offering h2 by ALPN only when http2. Serve it
// with an http.Server whose Protocols are ServerProtocols(http2): net/http
// adds h2 to the ALPN list of a server that allows HTTP/2.
func (s *CertStore) TLSConfigFor(http2 bool) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if !http2 {
		protos = protos[1:]
	}
	return s.withClientAuth(&tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
		NextProtos:     protos,
	})
}

// ServerProtocols is the http.Server.Protocols of the TLS listener:
// HTTP/1.1, and HTTP/2 when http2.
func ServerProtocols(http2 bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(http2)
	return p
}

// PlainProtocols is the http.Server.Protocols of the plain-text listener:
// HTTP/1.1, and HTTP/2 with prior knowledge (h2c, as gRPC clients without
// TLS speak it) when http2. h2c by Upgrade header is not offered.
func PlainProtocols(http2 bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(http2)
	return p
}
