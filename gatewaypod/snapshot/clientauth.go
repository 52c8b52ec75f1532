package snapshot

import (
	"fmt"
	"regexp"
	"strings"
)

// Client certificate verification modes (ingress-nginx's
// auth-tls-verify-client, nginx's ssl_verify_client).
const (
	// VerifyOn requires a certificate that chains to the CA; a request
	// without one, or with a bad one, is refused.
	VerifyOn = "on"
	// VerifyOff does not ask for a certificate.
	VerifyOff = "off"
	// VerifyOptional asks for a certificate; a request without one passes
	// (ssl-client-verify: NONE), one with a bad one is refused.
	VerifyOptional = "optional"
	// VerifyOptionalNoCA asks for a certificate and does not refuse one of
	// an unknown issuer: the result travels to the upstream in
	// ssl-client-verify. Other errors (expired ...) are refused, as nginx.
	VerifyOptionalNoCA = "optional_no_ca"
)

// ClientAuth verifies client certificates for a virtual host. TLS
// requests the certificate for the host's server name; the gateway then
// verifies it on every request against the CA of the host the request's
// Host header selects, so a connection made for another name cannot reach
// this host without a certificate.
type ClientAuth struct {
	// CASecret is the source Secret, "namespace/name"; the PEM bundle (its
	// "ca.crt") is in the instance Secret under CADataKey(CASecret).
	CASecret string `json:"caSecret"`
	// CAHash pins the bundle: DataHash(bundle).
	CAHash string `json:"caHash"`
	// Verify is on, off, optional or optional_no_ca; "" means on.
	Verify string `json:"verify,omitempty"`
	// Depth is the longest chain of CA certificates above the client
	// certificate that is accepted; 0 means 1 (the CA signed it directly).
	Depth int `json:"depth,omitempty"`
	// ErrorPage, when set, is an absolute http(s) URL a refused request is
	// redirected to (302) instead of getting 400.
	ErrorPage string `json:"errorPage,omitempty"`
	// PassCertificate sends the URL-escaped PEM certificate upstream in the
	// ssl-client-cert header.
	PassCertificate bool `json:"passCertificate,omitempty"`
	// MatchCN, when set, is an RE2 pattern ("CN=..."), matched unanchored
	// against the client certificate's subject DN (RFC 2253, as sent in
	// ssl-client-subject-dn): a request whose subject does not match, or
	// that has no certificate, gets 403 (auth-tls-match-cn).
	MatchCN string `json:"matchCN,omitempty"`
}

// ValidMatchCN checks an auth-tls-match-cn pattern: "CN=" followed by an
// RE2 expression.
func ValidMatchCN(v string) error {
	if !strings.HasPrefix(v, "CN=") {
		return fmt.Errorf("%q does not start with CN=", v)
	}
	if _, err := regexp.Compile(v); err != nil {
		return fmt.Errorf("%q is not a valid RE2 regular expression: %w", v, err)
	}
	return nil
}

// EffectiveVerify returns Verify, or VerifyOn when it is empty.
func (c *ClientAuth) EffectiveVerify() string {
	if c.Verify == "" {
		return VerifyOn
	}
	return c.Verify
}

// EffectiveDepth returns Depth, or 1 when it is 0.
func (c *ClientAuth) EffectiveDepth() int {
	if c.Depth == 0 {
		return 1
	}
	return c.Depth
}

func validateClientAuth(where string, c *ClientAuth) []error {
	var errs []error
	if ns, name, ok := strings.Cut(c.CASecret, "/"); !ok || ns == "" || name == "" || strings.ContainsAny(c.CASecret, "_ ") {
		errs = append(errs, fmt.Errorf("%s: caSecret %q is not namespace/name", where, c.CASecret))
	}
	if len(c.CAHash) != 16 || strings.Trim(c.CAHash, "0123456789abcdef") != "" {
		errs = append(errs, fmt.Errorf("%s: caHash %q is not 16 hex digits", where, c.CAHash))
	}
	switch c.Verify {
	case "", VerifyOn, VerifyOff, VerifyOptional, VerifyOptionalNoCA:
	default:
		errs = append(errs, fmt.Errorf("%s: verify %q is not on, off, optional or optional_no_ca", where, c.Verify))
	}
	if c.Depth < 0 || c.Depth > 16 {
		errs = append(errs, fmt.Errorf("%s: depth %d out of range 0..16", where, c.Depth))
	}
	if c.MatchCN != "" {
		if err := ValidMatchCN(c.MatchCN); err != nil {
			errs = append(errs, fmt.Errorf("%s: matchCN: %w", where, err))
		}
	}
	if c.ErrorPage != "" {
		if err := ValidRedirectURL(c.ErrorPage); err != nil {
			errs = append(errs, fmt.Errorf("%s: errorPage: %w", where, err))
		}
	}
	return errs
}

// CustomErrors replaces upstream responses with chosen status codes by the
// response of an error backend (ingress-nginx's custom-http-errors): the
// client gets the error backend's body with the original status code.
type CustomErrors struct {
	// Codes are the intercepted status codes, 400..599, sorted, unique.
	Codes []int `json:"codes"`
	// Backend serves the error pages; nil means the snapshot's
	// DefaultBackend (no interception when there is none either).
	Backend *Backend `json:"backend,omitempty"`
}

// Intercepts reports whether code is one of c's codes.
func (c *CustomErrors) Intercepts(code int) bool {
	for _, x := range c.Codes {
		if x == code {
			return true
		}
	}
	return false
}

func validateCustomErrors(where string, c *CustomErrors) []error {
	var errs []error
	if len(c.Codes) == 0 {
		errs = append(errs, fmt.Errorf("%s: no codes", where))
	}
	for i, code := range c.Codes {
		if code < 400 || code > 599 {
			errs = append(errs, fmt.Errorf("%s.codes[%d]: %d is not 400..599", where, i, code))
		}
		if i > 0 && code <= c.Codes[i-1] {
			errs = append(errs, fmt.Errorf("%s.codes: not sorted and unique", where))
		}
	}
	if c.Backend != nil {
		errs = append(errs, validateBackend(where+".backend", c.Backend)...)
	}
	return errs
}
