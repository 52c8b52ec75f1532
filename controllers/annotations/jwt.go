package annotations

import (
	"errors"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// JWT is the JWT validation group.
type JWT struct {
	// SecretNamespace is the namespace part of jwt-secret ("" when the
	// value is a bare name: the Ingress's namespace). The compiler refuses
	// any namespace other than the Ingress's.
	SecretNamespace string
	// SecretName is the Secret holding the verification keys; "" when off.
	SecretName string
	// Issuer, Audiences, Header, ClaimsToHeaders and RequireExpiry become
	// snapshot.JWT's.
	Issuer          string
	Audiences       []string
	Header          string
	ClaimsToHeaders []snapshot.ClaimHeader
	RequireExpiry   bool
}

// parseClaimHeaders reads "claim:Header, claim2:Header2".
func parseClaimHeaders(v string) ([]snapshot.ClaimHeader, error) {
	var out []snapshot.ClaimHeader
	for _, it := range splitList(v) {
		claim, header, ok := strings.Cut(it, ":")
		claim, header = strings.TrimSpace(claim), strings.TrimSpace(header)
		if !ok || claim == "" || !snapshot.ValidToken(header) {
			return nil, errors.New(`must be a comma-separated list of claim:Header-Name pairs, such as "sub:X-User,email:X-Email"`)
		}
		out = append(out, snapshot.ClaimHeader{Claim: claim, Header: header})
	}
	return out, nil
}

func vClaimHeaders(v string) error {
	if err := vText(v); err != nil {
		return err
	}
	_, err := parseClaimHeaders(v)
	return err
}

// JWTGroup reads the portico.dev/jwt-* annotations.
var JWTGroup = &Group[JWT]{
	Name: "jwt",
	Annotations: []Annotation{
		{Name: "jwt-secret", Validator: vSecretRef, Scope: ScopeLocation, Risk: RiskMedium, PorticoOnly: true,
			Doc: `Secret in the Ingress's namespace holding the verification keys: a JWKS document under "jwks.json" or a PEM public key under "key.pem". Requests without a valid token get 401.`},
		{Name: "jwt-issuer", Validator: vText, Scope: ScopeLocation, Risk: RiskLow, PorticoOnly: true,
			Doc: `The "iss" claim required; default: any.`},
		{Name: "jwt-audiences", Validator: vList(vText), Scope: ScopeLocation, Risk: RiskLow, PorticoOnly: true,
			Doc: `Comma-separated audiences; the token's "aud" must hold one of them. Default: any.`},
		{Name: "jwt-header", Validator: vToken, Scope: ScopeLocation, Risk: RiskLow, PorticoOnly: true,
			Doc: `Request header carrying the token (a "Bearer " prefix is allowed); default Authorization with the Bearer scheme.`},
		{Name: "jwt-claims-to-headers", Validator: vClaimHeaders, Scope: ScopeLocation, Risk: RiskMedium, PorticoOnly: true,
			Doc: `Copies claims of a valid token into request headers sent upstream, "sub:X-User,email:X-Email"; the client's own values of these headers are always removed.`},
		{Name: "jwt-require-exp", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow, PorticoOnly: true,
			Doc: `"true" refuses (401) a token without an "exp" claim, which would otherwise be valid forever. Default false (an "exp" present is always checked).`},
	},
	parse: func(r *reader) (JWT, error) {
		ref := r.str("jwt-secret")
		if ref == "" {
			for _, n := range []string{"jwt-issuer", "jwt-audiences", "jwt-header", "jwt-claims-to-headers", "jwt-require-exp"} {
				if r.has(n) {
					// Refuse rather than serve unprotected what was meant to be protected.
					return JWT{}, r.errorf(n, ReasonInvalidAnnotation, "needs %sjwt-secret", PorticoPrefix)
				}
			}
			return JWT{}, nil
		}
		j := JWT{SecretName: ref, Issuer: r.str("jwt-issuer"), Audiences: splitList(r.str("jwt-audiences")), Header: r.str("jwt-header")}
		if ns, name, ok := strings.Cut(ref, "/"); ok {
			j.SecretNamespace, j.SecretName = ns, name
		}
		if strings.EqualFold(j.Header, "Authorization") {
			j.Header = ""
		}
		j.ClaimsToHeaders, _ = parseClaimHeaders(r.str("jwt-claims-to-headers")) // validated
		j.RequireExpiry = r.boolean("jwt-require-exp", false)
		return j, nil
	},
}
