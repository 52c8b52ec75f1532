package compile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Reasons of client-certificate (auth-tls-*) rejections and warnings.
const (
	// ReasonClientCASecretForeign: auth-tls-secret names another namespace.
	ReasonClientCASecretForeign = "ClientCASecretInOtherNamespace"
	// ReasonClientCASecretNotFound: the auth-tls-secret Secret does not exist.
	ReasonClientCASecretNotFound = "ClientCASecretNotFound"
	// ReasonClientCASecretInvalid: the Secret has no usable ca.crt.
	ReasonClientCASecretInvalid = "ClientCASecretInvalid"
	// ReasonClientAuthConflict: a host's client authentication is already
	// set, differently, by an older Ingress.
	ReasonClientAuthConflict = "ClientAuthConflict"
	// ReasonClientAuthInherited: a host of this Ingress requires client
	// certificates because of another Ingress.
	ReasonClientAuthInherited = "ClientAuthInherited"
)

// caKey is the key of the CA bundle in a Secret (ingress-nginx's).
const caKey = "ca.crt"

// clientAuthOf is the resolved auth-tls-* of one Ingress.
type clientAuthOf struct {
	ca   *snapshot.ClientAuth
	data []byte // the PEM bundle
}

// resolveClientAuth checks auth-tls-secret of a primary Ingress and loads
// its CA bundle. The Secret must be in the Ingress's namespace (no
// borrowing another tenant's trust anchors) and hold a parseable ca.crt;
// otherwise the Ingress is rejected, never served without the client
// authentication it asks for.
func resolveClientAuth(c *compiled, secrets []corev1.Secret) *rejection {
	a := c.cfg.ClientAuth
	if a.SecretName == "" || c.cfg.Canary.Enabled {
		return nil
	}
	ns := a.SecretNamespace
	if ns == "" {
		ns = c.ing.Namespace
	}
	if ns != c.ing.Namespace {
		return &rejection{ReasonClientCASecretForeign, fmt.Sprintf(
			"auth-tls-secret %s/%s is in another namespace; only Secrets of the Ingress's namespace %q may be used", ns, a.SecretName, c.ing.Namespace)}
	}
	name := ns + "/" + a.SecretName
	var s *corev1.Secret
	for i := range secrets {
		if secrets[i].Namespace == ns && secrets[i].Name == a.SecretName {
			s = &secrets[i]
		}
	}
	if s == nil {
		return &rejection{ReasonClientCASecretNotFound, fmt.Sprintf("auth-tls-secret %s not found; the Ingress is not served until it exists", name)}
	}
	bundle := s.Data[caKey]
	if err := checkCABundle(bundle); err != nil {
		return &rejection{ReasonClientCASecretInvalid, fmt.Sprintf("auth-tls-secret %s: %s %v", name, caKey, err)}
	}
	c.clientAuth = &clientAuthOf{
		ca: &snapshot.ClientAuth{CASecret: name, CAHash: snapshot.DataHash(bundle), Verify: a.Verify, Depth: a.Depth,
			ErrorPage: a.ErrorPage, PassCertificate: a.PassCertificate, MatchCN: a.MatchCN},
		data: bundle,
	}
	return nil
}

// checkCABundle accepts PEM holding at least one certificate, and nothing
// that does not parse.
func checkCABundle(b []byte) error {
	n := 0
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse: %w", err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("holds no PEM certificate")
	}
	return nil
}

// clientAuth sets each host's client authentication from the oldest
// primary Ingress that asks for it on that host, warns the Ingresses that
// disagree or are covered by another's, and adds the CA bundles to data.
func (b *builder) clientAuth(primaries []*compiled, data map[string][]byte) map[string][]byte {
	owner := map[string]*compiled{}
	for _, c := range primaries {
		if c.clientAuth == nil {
			continue
		}
		for _, h := range ruleHosts(c.ing) {
			vh := b.hosts[h]
			if vh == nil {
				continue
			}
			if prev := owner[h]; prev != nil {
				if *prev.clientAuth.ca != *c.clientAuth.ca {
					c.res.Warnings = append(c.res.Warnings, Warning{ReasonClientAuthConflict, fmt.Sprintf(
						"host %q: auth-tls-* differs from the older Ingress %s, whose client authentication applies to the whole host; this Ingress's is ignored there",
						displayHost(h), prev.src)})
				}
				continue
			}
			owner[h] = c
			vh.clientAuth = c.clientAuth.ca
			if data == nil {
				data = map[string][]byte{}
			}
			data[snapshot.CADataKey(c.clientAuth.ca.CASecret)] = c.clientAuth.data
		}
	}
	if len(owner) == 0 {
		return data
	}
	for _, c := range primaries {
		if c.clientAuth != nil {
			continue
		}
		for _, h := range ruleHosts(c.ing) {
			if o := owner[h]; o != nil {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonClientAuthInherited, fmt.Sprintf(
					"host %q requires client certificates (auth-tls-* of Ingress %s, verify %s); they apply to this Ingress's routes on it too",
					displayHost(h), o.src, o.clientAuth.ca.Verify)})
			}
		}
	}
	return data
}
