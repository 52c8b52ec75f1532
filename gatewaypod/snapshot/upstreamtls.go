package snapshot

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// UpstreamTLS configures TLS to an HTTPS or GRPCS upstream
// (ingress-nginx's proxy-ssl-* annotations). The key material is not here:
// CAHash and CertHash pin the bytes that travel in the instance Secret under
// CADataKey(Secret) and CertificateDataKeys(Secret).
type UpstreamTLS struct {
	// Secret is the proxy-ssl-secret, "namespace/name"; "" when the route
	// names none (then neither CAHash nor CertHash is set).
	Secret string `json:"secret,omitempty"`
	// CAHash is DataHash of the Secret's ca.crt, the roots that verify the
	// upstream; "" when the Secret has none (system roots verify).
	CAHash string `json:"caHash,omitempty"`
	// CertHash is CertificateHash of the Secret's tls.crt and tls.key, the
	// client certificate presented to the upstream; "" when it has none.
	CertHash string `json:"certHash,omitempty"`
	// Verify checks the upstream's certificate chain and name.
	Verify bool `json:"verify,omitempty"`
	// VerifyDepth bounds the verified chain: at most VerifyDepth
	// certificates above the upstream's own (nginx's proxy_ssl_verify_depth);
	// 0 means no bound.
	VerifyDepth int `json:"verifyDepth,omitempty"`
	// ServerName is the name verified in the upstream's certificate and,
	// with SNI, sent as the TLS server name; "" means the backend Service's
	// DNS name, "<service>.<namespace>.svc" (the external name for an
	// ExternalName Service).
	ServerName string `json:"serverName,omitempty"`
	// SNI sends ServerName in the TLS handshake.
	SNI bool `json:"sni,omitempty"`
	// Protocols are the TLS versions offered, a subset of UpstreamTLSVersions;
	// empty means TLS 1.2 and 1.3.
	Protocols []string `json:"protocols,omitempty"`
	// Ciphers are the TLS 1.2 cipher suites offered (IANA names, a subset of
	// UpstreamCipherSuites), in order; empty means Go's defaults. TLS 1.3
	// suites are not configurable.
	Ciphers []string `json:"ciphers,omitempty"`
}

// Upstream TLS versions, nginx's names.
const (
	TLSv12 = "TLSv1.2"
	TLSv13 = "TLSv1.3"
)

// UpstreamTLSVersions are the TLS versions an upstream may be offered:
// TLS 1.0 and 1.1 are never used.
var UpstreamTLSVersions = []string{TLSv12, TLSv13}

// UpstreamCipherSuites maps the TLS 1.2 cipher suites an upstream may be
// offered, by IANA name, to their OpenSSL names: forward-secret AEAD
// suites only.
var UpstreamCipherSuites = map[string]string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256":       "ECDHE-ECDSA-AES128-GCM-SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256":         "ECDHE-RSA-AES128-GCM-SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384":       "ECDHE-ECDSA-AES256-GCM-SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384":         "ECDHE-RSA-AES256-GCM-SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256":   "ECDHE-RSA-CHACHA20-POLY1305",
}

// UpstreamTLSMaterial is the key material of one UpstreamTLS, taken from
// the instance Secret's data.
type UpstreamTLSMaterial struct {
	// CA is the PEM bundle that verifies the upstream; nil without CAHash.
	CA []byte
	// Cert and Key are the PEM client certificate chain and key; nil
	// without CertHash.
	Cert, Key []byte
}

// ErrUpstreamTLSMissing is wrapped by Material when the Secret data lacks
// a key the route names.
var ErrUpstreamTLSMissing = errors.New("upstream TLS material missing from the TLS Secret")

// ErrUpstreamTLSHashMismatch is wrapped by Material when the bytes do not
// match the pinned hash (a Secret and a snapshot update crossing).
var ErrUpstreamTLSHashMismatch = errors.New("upstream TLS material does not match its pinned hash")

// Material returns t's key material from the instance Secret's data, or
// an error wrapping ErrUpstreamTLSMissing or ErrUpstreamTLSHashMismatch.
func (t *UpstreamTLS) Material(data map[string][]byte) (UpstreamTLSMaterial, error) {
	var m UpstreamTLSMaterial
	if t.CAHash != "" {
		k := CADataKey(t.Secret)
		ca, ok := data[k]
		if !ok {
			return m, fmt.Errorf("%w: no %s", ErrUpstreamTLSMissing, k)
		}
		if h := DataHash(ca); h != t.CAHash {
			return m, fmt.Errorf("%w: %s has hash %s, pinned %s", ErrUpstreamTLSHashMismatch, k, h, t.CAHash)
		}
		m.CA = ca
	}
	if t.CertHash != "" {
		ck, kk := CertificateDataKeys(t.Secret)
		crt, okC := data[ck]
		key, okK := data[kk]
		if !okC || !okK {
			return m, fmt.Errorf("%w: no %s/%s", ErrUpstreamTLSMissing, ck, kk)
		}
		if h := CertificateHash(crt, key); h != t.CertHash {
			return m, fmt.Errorf("%w: %s/%s have hash %s, pinned %s", ErrUpstreamTLSHashMismatch, ck, kk, h, t.CertHash)
		}
		m.Cert, m.Key = crt, key
	}
	return m, nil
}

// ValidateData checks that every route's upstream TLS material is in data
// (the instance Secret's) with the pinned content, and returns every
// problem joined. gatewaypod serves a route whose material is absent with
// 502, never without TLS or verification.
func (s *Snapshot) ValidateData(data map[string][]byte) error {
	var errs []error
	for i := range s.Hosts {
		for j := range s.Hosts[i].Routes {
			u := s.Hosts[i].Routes[j].Upstream
			if u == nil || u.TLS == nil {
				continue
			}
			if _, err := u.TLS.Material(data); err != nil {
				errs = append(errs, fmt.Errorf("hosts[%d].routes[%d].upstream.tls: %w", i, j, err))
			}
		}
	}
	return errors.Join(errs...)
}

// validateUpstreamTLS checks u.TLS; where names u.
func validateUpstreamTLS(where string, u *Upstream) []error {
	t := u.TLS
	if t == nil {
		return nil
	}
	where += ".tls"
	var errs []error
	if u.Protocol != ProtocolHTTPS && u.Protocol != ProtocolGRPCS {
		errs = append(errs, fmt.Errorf("%s: TLS settings need protocol HTTPS or GRPCS, not %q", where, u.Protocol))
	}
	if t.Secret != "" {
		if ns, name, ok := strings.Cut(t.Secret, "/"); !ok || ns == "" || name == "" || strings.ContainsAny(t.Secret, "_ ") || strings.Count(t.Secret, "/") != 1 {
			errs = append(errs, fmt.Errorf("%s: secret %q is not namespace/name", where, t.Secret))
		}
		if t.CAHash == "" && t.CertHash == "" {
			errs = append(errs, fmt.Errorf("%s: secret %q pins neither a CA nor a client certificate", where, t.Secret))
		}
	} else if t.CAHash != "" || t.CertHash != "" {
		errs = append(errs, fmt.Errorf("%s: caHash and certHash need secret", where))
	}
	for _, h := range []string{t.CAHash, t.CertHash} {
		if h != "" && (len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "") {
			errs = append(errs, fmt.Errorf("%s: hash %q is not 16 hex digits", where, h))
		}
	}
	if t.VerifyDepth < 0 || t.VerifyDepth > 100 {
		errs = append(errs, fmt.Errorf("%s: verifyDepth %d is not 0..100", where, t.VerifyDepth))
	}
	if t.ServerName != "" {
		if err := ValidHost(t.ServerName, false); err != nil {
			errs = append(errs, fmt.Errorf("%s: serverName: %w", where, err))
		}
	}
	for _, p := range t.Protocols {
		if !slices.Contains(UpstreamTLSVersions, p) {
			errs = append(errs, fmt.Errorf("%s: protocol %q is not one of %s", where, p, strings.Join(UpstreamTLSVersions, ", ")))
		}
	}
	for _, c := range t.Ciphers {
		if _, ok := UpstreamCipherSuites[c]; !ok {
			errs = append(errs, fmt.Errorf("%s: cipher suite %q is not an allowed TLS 1.2 suite", where, c))
		}
	}
	return errs
}
