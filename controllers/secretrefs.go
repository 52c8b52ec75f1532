package controllers

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portico-dev/portico/controllers/annotations"
)

// secretAnnotations name Secrets by "namespace/name" (ingress-nginx's
// format) or by bare name. Only Secrets in the Ingress's own namespace are
// ever read: the compiler rejects a reference to another namespace, so an
// Ingress cannot borrow another tenant's key material.
var secretAnnotations = []string{
	"proxy-ssl-secret", // CA and client certificate for TLS to the upstream
	"auth-tls-secret",  // CA that verifies client certificates
	"jwt-secret",       // keys that verify JSON Web Tokens (portico.dev/ only)
}

// ingressSecretRefs lists the Secrets an Ingress refers to: spec.tls and
// the Secret-valued annotations, under either annotation prefix. The
// compiler decides what each is for; this only decides what to read.
func ingressSecretRefs(ing *networkingv1.Ingress) []types.NamespacedName {
	var out []types.NamespacedName
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			out = append(out, types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName})
		}
	}
	for _, name := range secretAnnotations {
		for _, prefix := range []string{annotations.PorticoPrefix, annotations.NginxPrefix} {
			v, ok := ing.Annotations[prefix+name]
			if !ok {
				continue
			}
			ns, n := ing.Namespace, strings.TrimSpace(v)
			if i := strings.IndexByte(n, '/'); i >= 0 {
				ns, n = n[:i], n[i+1:]
			}
			if ns == ing.Namespace && n != "" {
				out = append(out, types.NamespacedName{Namespace: ns, Name: n})
			}
		}
	}
	return out
}
