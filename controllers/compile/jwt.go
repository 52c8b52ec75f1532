package compile

import (
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/jwtauth"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Reasons of JWT rejections: an Ingress that asks for JWT validation and
// whose keys cannot be used is left out rather than served unprotected.
const (
	ReasonJWTSecretNotFound = "JWTSecretNotFound"
	ReasonJWTSecretInvalid  = "JWTSecretInvalid"
)

// applyJWT puts the JWT policy of c on its routes and records the key
// material under snapshot.JWTDataKey in keys. Only the Ingress's own
// namespace is searched: a reference to another namespace is rejected, so
// an Ingress cannot borrow another tenant's Secret. A canary Ingress
// inherits its primary's policy; its own jwt-* annotations are ignored with
// a warning.
func applyJWT(c *compiled, secrets []corev1.Secret, keys map[string][]byte) *rejection {
	j := c.cfg.JWT
	if j.SecretName == "" {
		return nil
	}
	if c.cfg.Canary.Enabled {
		c.res.Warnings = append(c.res.Warnings, Warning{ReasonAnnotationWarning,
			"annotations of the group jwt are ignored on a canary Ingress: it inherits them from its primary"})
		return nil
	}
	ns := c.ing.Namespace
	if j.SecretNamespace != "" && j.SecretNamespace != ns {
		return &rejection{annotations.ReasonInvalidAnnotation, fmt.Sprintf(
			"annotation %sjwt-secret: Secret %s/%s is in another namespace; only Secrets of the Ingress's namespace %s may be used",
			annotations.PorticoPrefix, j.SecretNamespace, j.SecretName, ns)}
	}
	name := ns + "/" + j.SecretName
	var s *corev1.Secret
	for i := range secrets {
		if secrets[i].Namespace == ns && secrets[i].Name == j.SecretName {
			s = &secrets[i]
			break
		}
	}
	if s == nil {
		return &rejection{ReasonJWTSecretNotFound, fmt.Sprintf("jwt-secret: Secret %s not found; the Ingress is not served until it exists", name)}
	}
	jwks, okJ := s.Data[jwtauth.SecretKeyJWKS]
	pemKey, okP := s.Data[jwtauth.SecretKeyPEM]
	material := jwks
	switch {
	case okJ == okP:
		return &rejection{ReasonJWTSecretInvalid, fmt.Sprintf("jwt-secret: Secret %s must hold exactly one of %q (a JWKS document) and %q (a PEM public key)",
			name, jwtauth.SecretKeyJWKS, jwtauth.SecretKeyPEM)}
	case okP:
		material = pemKey
	}
	if _, err := jwtauth.ParseKeys(material); err != nil {
		return &rejection{ReasonJWTSecretInvalid, fmt.Sprintf("jwt-secret: Secret %s: %v", name, err)}
	}
	pol := &snapshot.JWT{Secret: name, Hash: snapshot.DataHash(material), Issuer: j.Issuer, Audiences: j.Audiences,
		Header: j.Header, ClaimsToHeaders: j.ClaimsToHeaders, RequireExpiry: j.RequireExpiry}
	for i := range c.routes {
		c.routes[i].route.JWT = pol
	}
	keys[snapshot.JWTDataKey(name)] = material
	return nil
}

// withJWTKeys adds the JWT key material to the instance Secret's data.
func withJWTKeys(data, keys map[string][]byte) map[string][]byte {
	if len(keys) == 0 {
		return data
	}
	if data == nil {
		data = make(map[string][]byte, len(keys))
	}
	maps.Copy(data, keys)
	return data
}
