package annotations

import (
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// ClientAuth is the client-certificate group (auth-tls-*).
type ClientAuth struct {
	// SecretNamespace and SecretName name the Secret whose ca.crt verifies
	// client certificates; SecretNamespace is "" for a bare name (the
	// Ingress's own namespace). Empty SecretName: no client authentication.
	SecretNamespace, SecretName string
	// Verify is on, off, optional or optional_no_ca.
	Verify string
	// Depth is the verification depth (default 1).
	Depth int
	// ErrorPage is an absolute http(s) URL failures are redirected to.
	ErrorPage string
	// PassCertificate sends the client certificate upstream.
	PassCertificate bool
	// MatchCN is auth-tls-match-cn: a "CN=..." pattern the certificate's
	// subject DN must match.
	MatchCN string
}

// ClientAuthGroup reads auth-tls-secret and its companions.
var ClientAuthGroup = &Group[ClientAuth]{
	Name: "client-auth",
	Annotations: []Annotation{
		{Name: "auth-tls-secret", Validator: vSecretRef, Scope: ScopeHost, Risk: RiskMedium,
			Doc: "\"namespace/name\" of a Secret in the Ingress's own namespace whose ca.crt (PEM) verifies client certificates; another namespace rejects the Ingress. Applies to every host of the Ingress's rules; all Ingresses of a host must agree."},
		{Name: "auth-tls-verify-client", Validator: vEnum(snapshot.VerifyOn, snapshot.VerifyOff, snapshot.VerifyOptional, snapshot.VerifyOptionalNoCA), Scope: ScopeHost, Risk: RiskMedium,
			Doc: "on (default: a valid certificate is required), optional (checked when sent), optional_no_ca (asked for; an unknown issuer is not refused, the result goes upstream) or off."},
		{Name: "auth-tls-verify-depth", Validator: vInt(1, 16), Scope: ScopeHost, Risk: RiskLow,
			Doc: "Longest chain of CA certificates above the client certificate (default 1)."},
		{Name: "auth-tls-error-page", Validator: vURL, Scope: ScopeHost, Risk: RiskMedium,
			Doc: "Absolute http(s) URL a request failing verification is redirected to (302) instead of answered 400."},
		{Name: "auth-tls-pass-certificate-to-upstream", Validator: vBool, Scope: ScopeHost, Risk: RiskLow,
			Doc: "Send the client certificate, URL-escaped PEM, upstream in the ssl-client-cert header. ssl-client-verify, ssl-client-subject-dn and ssl-client-issuer-dn are always sent; client-supplied ssl-client-* headers are dropped."},
		{Name: "auth-tls-match-cn", Validator: vMatchCN, Scope: ScopeHost, Risk: RiskHigh,
			Doc: "\"CN=\" and an RE2 pattern, e.g. \"CN=(alice|bob)\", matched unanchored (as nginx's ~) against the client certificate's subject DN (\"CN=alice,O=Example\"); a request without a certificate, or whose subject does not match, gets 403 \"client certificate unauthorized\"."},
	},
	parse: func(r *reader) (ClientAuth, error) {
		c := ClientAuth{
			Verify:          r.str("auth-tls-verify-client"),
			Depth:           r.integer("auth-tls-verify-depth", 1),
			ErrorPage:       r.str("auth-tls-error-page"),
			PassCertificate: r.boolean("auth-tls-pass-certificate-to-upstream", false),
			MatchCN:         r.str("auth-tls-match-cn"),
		}
		ref, ok, _ := r.get("auth-tls-secret")
		if !ok {
			for _, other := range []string{"auth-tls-verify-client", "auth-tls-verify-depth", "auth-tls-error-page", "auth-tls-pass-certificate-to-upstream", "auth-tls-match-cn"} {
				if r.has(other) {
					r.warnf("annotation %s is ignored: auth-tls-secret is not set", r.key(other))
				}
			}
			return ClientAuth{}, nil
		}
		if c.Verify == "" {
			c.Verify = snapshot.VerifyOn
		}
		c.SecretNamespace, c.SecretName, _ = splitSecretRef(ref)
		return c, nil
	},
}

func vMatchCN(v string) error {
	if err := vText(v); err != nil {
		return err
	}
	return snapshot.ValidMatchCN(v)
}
