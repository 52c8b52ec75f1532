package annotations

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Secret-valued annotations (proxy-ssl-secret, auth-tls-secret,
// jwt-secret) name a Secret as "namespace/name" (ingress-nginx's format) or
// by bare name. Which namespace may be used is the compiler's decision.

// splitSecretRef splits "namespace/name" or "name" (namespace "").
func splitSecretRef(v string) (ns, name string, err error) {
	v = strings.TrimSpace(v)
	name = v
	if i := strings.IndexByte(v, '/'); i >= 0 {
		ns, name = v[:i], v[i+1:]
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return "", "", fmt.Errorf("namespace %q: %s", ns, strings.Join(msgs, "; "))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", "", fmt.Errorf("name %q: %s", name, strings.Join(msgs, "; "))
	}
	return ns, name, nil
}

func vSecretRef(v string) error { _, _, err := splitSecretRef(v); return err }
