package proxy

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Headers sent upstream about the client certificate, ingress-nginx's names
// (canonical form). Client-supplied headers starting with "ssl-client-" or
// "ssl_client_" are always dropped, so an upstream never sees a forged one.
const (
	hdrSSLClientVerify    = "Ssl-Client-Verify"
	hdrSSLClientSubjectDN = "Ssl-Client-Subject-Dn"
	hdrSSLClientIssuerDN  = "Ssl-Client-Issuer-Dn"
	hdrSSLClientCert      = "Ssl-Client-Cert"
)

// ClientCAs returns the trust anchors loaded for a client CA Secret
// ("namespace/name"), nil when none are loaded; CertStore.ClientCAPool is one.
type ClientCAs func(secret string) *x509.CertPool

// SetClientCAs sets where client CA bundles come from. Call it before
// serving; until then (and over cleartext) hosts that verify client
// certificates refuse every request they would have to verify.
func (p *Proxy) SetClientCAs(cas ClientCAs) { p.clientCAs = cas }

// clientCertHeaderNames are the headers the proxy owns, in both spellings
// (some servers map '-' and '_' to the same variable), canonical.
var clientCertHeaderNames = []string{
	hdrSSLClientVerify, hdrSSLClientSubjectDN, hdrSSLClientIssuerDN, hdrSSLClientCert,
	"Ssl_client_verify", "Ssl_client_subject_dn", "Ssl_client_issuer_dn", "Ssl_client_cert",
}

// stripClientCertHeaders drops client-supplied copies of the ssl-client-*
// headers the proxy sets. On hosts that verify client certificates
// (thorough), every header starting with ssl-client- or ssl_client_ goes,
// in any case; elsewhere the owned names are deleted by key, which is
// cheaper than a scan of all headers on every request.
func stripClientCertHeaders(h http.Header, thorough bool) {
	if !thorough {
		for _, k := range clientCertHeaderNames {
			delete(h, k)
		}
		return
	}
	for k := range h {
		if len(k) > 11 && (k[0] == 'S' || k[0] == 's') &&
			(strings.EqualFold(k[:11], "ssl-client-") || strings.EqualFold(k[:11], "ssl_client_")) {
			delete(h, k)
		}
	}
}

// clientAuth applies the client-certificate verification of the request's
// virtual host (nginx's ssl_verify_client, as ingress-nginx configures it)
// and sets the ssl-client-* headers for the upstream. It returns the status
// and true when it answered the request itself:
//
//   - cleartext: 403, unless verify is off (ACME HTTP-01 challenges and
//     redirects, such as ssl-redirect, still pass);
//   - a TLS connection whose server name selects a host with other
//     verification settings: 421 Misdirected Request, so a client cannot
//     complete TLS for a name that does not ask for a certificate and then
//     send the Host of one that does; clients retry on a new connection;
//   - on: no certificate or a bad one: 400, or a 302 to the error page;
//   - optional: a bad certificate likewise; none passes as NONE;
//   - optional_no_ca: a certificate of an unknown issuer passes, marked
//     FAILED upstream; other errors (expired, wrong purpose) are refused.
//
// With auth-tls-match-cn (d.MatchCN) a request whose certificate subject
// does not match, or that has none (optional, off), gets 403, as nginx.
func (p *Proxy) clientAuth(w http.ResponseWriter, req *http.Request, st *state, d *router.Decision) (int, bool) {
	ca := d.ClientAuth
	stripClientCertHeaders(req.Header, ca != nil)
	if ca == nil {
		return 0, false
	}
	mode := ca.EffectiveVerify()
	if mode == snapshot.VerifyOff {
		if d.MatchCN != nil { // no certificate is asked for: none can match
			return p.reply(w, http.StatusForbidden, msgCNUnauthorized), true
		}
		req.Header[hdrSSLClientVerify] = []string{"NONE"}
		return 0, false
	}
	if req.TLS == nil {
		if d.Redirect != nil || strings.HasPrefix(req.URL.Path, router.ACMEChallengePrefix+"/") {
			req.Header[hdrSSLClientVerify] = []string{"NONE"}
			return 0, false
		}
		return p.reply(w, http.StatusForbidden, "client certificate required: use HTTPS"), true
	}
	if sni := st.rt.ClientAuth(req.TLS.ServerName); sni == nil || *sni != *ca {
		return p.reply(w, http.StatusMisdirectedRequest, "misdirected request: the TLS server name does not match the host's client certificate settings"), true
	}
	certs := req.TLS.PeerCertificates
	if len(certs) == 0 {
		if mode == snapshot.VerifyOn {
			return p.clientAuthFailed(w, ca, "No required SSL certificate was sent"), true
		}
		if d.MatchCN != nil { // nginx: an empty subject does not match
			return p.reply(w, http.StatusForbidden, msgCNUnauthorized), true
		}
		req.Header[hdrSSLClientVerify] = []string{"NONE"}
		return 0, false
	}
	var pool *x509.CertPool
	if p.clientCAs != nil {
		pool = p.clientCAs(ca.CASecret)
	}
	result := "SUCCESS"
	if err := p.verified.verify(req.TLS, pool, ca.EffectiveDepth()); err != nil {
		// optional_no_ca forgives only an unknown issuer, as nginx does
		// (ngx_ssl_verify_error_optional): an expired certificate is refused.
		if mode != snapshot.VerifyOptionalNoCA || !errors.Is(err, errUnknownIssuer) {
			p.log.Debug("Client certificate refused", "host", d.Host, "subject", certs[0].Subject.String(), "err", err)
			return p.clientAuthFailed(w, ca, "The SSL certificate error"), true
		}
		result = "FAILED:" + err.Error()
	}
	subject := certs[0].Subject.String()
	if d.MatchCN != nil && !d.MatchCN.MatchString(subject) {
		p.log.Debug("Client certificate subject not allowed", "host", d.Host, "subject", subject, "matchCN", ca.MatchCN)
		return p.reply(w, http.StatusForbidden, msgCNUnauthorized), true
	}
	h := req.Header
	h[hdrSSLClientVerify] = []string{result}
	h[hdrSSLClientSubjectDN] = []string{subject}
	h[hdrSSLClientIssuerDN] = []string{certs[0].Issuer.String()}
	if ca.PassCertificate {
		h[hdrSSLClientCert] = []string{escapeComponent(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw}))}
	}
	return 0, false
}

// msgCNUnauthorized is nginx's answer when auth-tls-match-cn fails.
const msgCNUnauthorized = "client certificate unauthorized"

// clientAuthFailed answers a refused request: a 302 to the error page, or
// 400 with nginx's message.
func (p *Proxy) clientAuthFailed(w http.ResponseWriter, ca *snapshot.ClientAuth, msg string) int {
	if ca.ErrorPage != "" {
		return p.redirect(w, &router.RedirectDecision{Code: http.StatusFound, Location: ca.ErrorPage})
	}
	return p.reply(w, http.StatusBadRequest, msg)
}

// errUnknownIssuer: the chain does not lead to the host's CA (OpenSSL's
// wording, as nginx reports it in ssl-client-verify).
var errUnknownIssuer = errors.New("unable to get local issuer certificate")

// verifyClientChain verifies a client's certificate chain against pool for
// client authentication, allowing at most depth CA certificates above the
// leaf. Errors carry OpenSSL's wording where nginx would report it.
func verifyClientChain(pool *x509.CertPool, certs []*x509.Certificate, depth int) error {
	if pool == nil {
		return errUnknownIssuer
	}
	opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			return errUnknownIssuer
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			return errors.New("certificate has expired or is not yet valid")
		case errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage:
			return errors.New("unsupported certificate purpose")
		}
		return err
	}
	for _, ch := range chains {
		if len(ch)-1 <= depth {
			return nil
		}
	}
	return errors.New("certificate chain too long")
}

// escapeComponent percent-encodes everything but RFC 3986 unreserved
// characters, as nginx's $ssl_client_escaped_cert.
func escapeComponent(b []byte) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(b) * 11 / 10)
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}
