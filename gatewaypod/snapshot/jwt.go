package snapshot

import (
	"fmt"
	"strings"
)

// JWT requires a valid JSON Web Token on every request of a route. The
// verification keys travel in the instance Secret under JWTDataKey(Secret)
// (a JWKS document or a PEM public key, as found in the source Secret) and
// are pinned here by hash.
type JWT struct {
	// Secret is the source Secret, "namespace/name".
	Secret string `json:"secret"`
	// Hash pins the key material: DataHash of the bytes under JWTDataKey.
	Hash string `json:"hash"`
	// Issuer, when set, must equal the token's "iss".
	Issuer string `json:"issuer,omitempty"`
	// Audiences, when set, must intersect the token's "aud".
	Audiences []string `json:"audiences,omitempty"`
	// Header carries the token; "" means "Authorization: Bearer <token>".
	Header string `json:"header,omitempty"`
	// ClaimsToHeaders copies claims of a valid token into request headers
	// sent upstream; those headers are always removed from the client's
	// request first, so a client cannot set them.
	ClaimsToHeaders []ClaimHeader `json:"claimsToHeaders,omitempty"`
	// RequireExpiry refuses a token without "exp" (one that never expires).
	RequireExpiry bool `json:"requireExpiry,omitempty"`
}

// ClaimHeader copies one claim into one request header.
type ClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// JWTDataKey returns the key of the instance Secret that holds the JWT
// verification keys taken from secret ("namespace/name").
func JWTDataKey(secret string) string {
	crt, _ := CertificateDataKeys(secret)
	return strings.TrimSuffix(crt, ".crt") + ".jwks"
}

// validateJWT checks j; nil is valid (no JWT required).
func validateJWT(where string, j *JWT) []error {
	if j == nil {
		return nil
	}
	var errs []error
	if ns, name, ok := strings.Cut(j.Secret, "/"); !ok || ns == "" || name == "" {
		errs = append(errs, fmt.Errorf("%s.jwt: secret %q is not namespace/name", where, j.Secret))
	}
	if j.Hash == "" {
		errs = append(errs, fmt.Errorf("%s.jwt: hash is empty", where))
	}
	if j.Header != "" && !validToken(j.Header) {
		errs = append(errs, fmt.Errorf("%s.jwt: header %q is not a header name", where, j.Header))
	}
	if hasControl(j.Issuer) {
		errs = append(errs, fmt.Errorf("%s.jwt: issuer holds control characters", where))
	}
	for _, a := range j.Audiences {
		if a == "" || hasControl(a) {
			errs = append(errs, fmt.Errorf("%s.jwt: audience %q is empty or holds control characters", where, a))
		}
	}
	for _, c := range j.ClaimsToHeaders {
		if c.Claim == "" || hasControl(c.Claim) || !validToken(c.Header) {
			errs = append(errs, fmt.Errorf("%s.jwt: claim %q to header %q: a claim name and a header name are required", where, c.Claim, c.Header))
		}
	}
	return errs
}
