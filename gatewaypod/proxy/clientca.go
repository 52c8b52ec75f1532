package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// loadedCA is one client CA bundle, parsed.
type loadedCA struct {
	hash string
	pool *x509.CertPool
}

// SetClientAuthLookup sets how the store finds the client-certificate
// verification of the virtual host a TLS server name selects (see
// router.ClientAuth); nil means no host asks for client certificates.
// Call it before serving.
func (s *CertStore) SetClientAuthLookup(lookup func(serverName string) *snapshot.ClientAuth) {
	s.clientAuth = lookup
}

// SetClientCAs records the client CA bundles the snapshot uses, by Secret
// ("namespace/name") with their pinned hash, and rebuilds. Like
// certificates, a bundle whose bytes do not match the pin keeps the one
// loaded before; with none before, the host's clients cannot be verified
// and are refused (fail closed).
func (s *CertStore) SetClientCAs(cas map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if maps.Equal(s.cas, cas) && s.cas != nil {
		return
	}
	s.cas = maps.Clone(cas)
	s.rebuildLocked()
}

// ClientCAPool returns the trust anchors loaded for a client CA Secret, or
// nil when they are not (yet) loaded.
func (s *CertStore) ClientCAPool(secret string) *x509.CertPool {
	if ca := s.set.Load().cas[secret]; ca != nil {
		return ca.pool
	}
	return nil
}

// loadCAsLocked fills next.cas from the recorded bundles and data.
func (s *CertStore) loadCAsLocked(old, next *certSet) {
	next.cas = make(map[string]*loadedCA, len(s.cas))
	for secret, hash := range s.cas {
		ca, reason, err := s.loadCA(secret, hash, old.cas[secret])
		if err != nil {
			s.errs.WithLabelValues(reason).Inc()
			s.log.Warn("Client CA bundle not loaded", "secret", secret, "reason", reason, "err", err, "keptPrevious", ca != nil)
		}
		if ca != nil {
			next.cas[secret] = ca
		}
	}
}

func (s *CertStore) loadCA(secret, hash string, prev *loadedCA) (*loadedCA, string, error) {
	if s.data == nil {
		return prev, "", nil
	}
	k := snapshot.CADataKey(secret)
	b, ok := s.data[k]
	if !ok {
		return prev, ReasonMissing, errors.New("no " + k + " in the TLS Secret")
	}
	if h := snapshot.DataHash(b); h != hash {
		return prev, ReasonHashMismatch, errors.New("hash " + h + " does not match the pinned " + hash)
	}
	if prev != nil && prev.hash == hash {
		return prev, "", nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return prev, ReasonInvalid, errors.New("no certificate in the CA bundle")
	}
	return &loadedCA{hash: hash, pool: pool}, "", nil
}

// withClientAuth makes base ask for a client certificate when the server
// name selects a host that verifies them. The certificate is requested, not
// required, and not verified by the handshake: the proxy verifies it per
// request against the CA of the host the request is for (see
// Proxy.clientAuth), so a connection opened for one name cannot be used to
// reach another name without its verification. Session tickets are off for
// those hosts so that a session resumed from a name that did not ask for a
// certificate cannot skip the request.
func (s *CertStore) withClientAuth(base *tls.Config) *tls.Config {
	asking := base.Clone()
	asking.ClientAuth = tls.RequestClientCert
	asking.SessionTicketsDisabled = true
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if s.clientAuth == nil {
			return nil, nil
		}
		if ca := s.clientAuth(hello.ServerName); ca != nil && ca.EffectiveVerify() != snapshot.VerifyOff {
			return asking, nil
		}
		return nil, nil
	}
	return base
}
