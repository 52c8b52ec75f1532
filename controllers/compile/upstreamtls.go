package compile

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Reasons an Ingress is rejected for its proxy-ssl-secret. The Ingress is
// left out rather than served with weaker TLS to its upstream than asked
// for; it comes back when the Secret is fixed.
const (
	ReasonProxySSLSecretNotFound = "ProxySSLSecretNotFound"
	ReasonProxySSLSecretInvalid  = "ProxySSLSecretInvalid"
	// ReasonProxySSLSecretNamespace: the Secret is in another namespace; an
	// Ingress cannot borrow another tenant's key material.
	ReasonProxySSLSecretNamespace = "ProxySSLSecretNamespace"
)

// Keys of a proxy-ssl-secret, as ingress-nginx reads them.
const caCertKey = "ca.crt"

// upstreamTLS is the TLS to the upstream of one Ingress's routes.
type upstreamTLS struct {
	settings *snapshot.UpstreamTLS // nil: TLS without verification, or not a TLS protocol
	data     map[string][]byte     // key material for the instance Secret
}

// secretIndex looks Secrets up by namespace/name.
func secretIndex(secrets []corev1.Secret) map[types.NamespacedName]*corev1.Secret {
	m := make(map[types.NamespacedName]*corev1.Secret, len(secrets))
	for i := range secrets {
		m[types.NamespacedName{Namespace: secrets[i].Namespace, Name: secrets[i].Name}] = &secrets[i]
	}
	return m
}

// resolveUpstreamTLS turns the proxy-ssl-* annotations of ing into snapshot
// settings and key material. proxy-ssl-* on an Ingress whose
// backend-protocol is not HTTPS or GRPCS are ignored with a warning, as in
// ingress-nginx. A proxy-ssl-secret in another namespace (whatever the
// protocol), missing, or without a usable CA or client certificate rejects
// the Ingress.
func resolveUpstreamTLS(ing *networkingv1.Ingress, cfg *annotations.Config, secrets map[types.NamespacedName]*corev1.Secret) (upstreamTLS, []Warning, *rejection) {
	p := cfg.ProxySSL
	// Another namespace's Secret is refused even where the annotation would
	// be ignored: the reference itself is an attempt to borrow its keys.
	if p.SecretNamespace != "" && p.SecretNamespace != ing.Namespace {
		key := types.NamespacedName{Namespace: p.SecretNamespace, Name: p.SecretName}
		return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretNamespace, fmt.Sprintf(
			"proxy-ssl-secret %s is in another namespace; an Ingress may only use Secrets of its own namespace %s", key, ing.Namespace)}
	}
	switch cfg.Upstream.Protocol {
	case snapshot.ProtocolHTTPS, snapshot.ProtocolGRPCS:
	default:
		if !p.Set {
			return upstreamTLS{}, nil, nil
		}
		proto := cfg.Upstream.Protocol
		if proto == "" {
			proto = snapshot.ProtocolHTTP
		}
		return upstreamTLS{}, []Warning{{ReasonAnnotationWarning, fmt.Sprintf(
			"proxy-ssl-* annotations are ignored: backend-protocol is %s, not HTTPS or GRPCS", proto)}}, nil
	}
	u := &snapshot.UpstreamTLS{Verify: p.Verify, VerifyDepth: p.VerifyDepth, ServerName: p.Name, SNI: p.ServerName,
		Protocols: p.Protocols, Ciphers: p.Ciphers}
	var data map[string][]byte
	if p.SecretName != "" {
		key := types.NamespacedName{Namespace: p.SecretNamespace, Name: p.SecretName}
		if key.Namespace == "" {
			key.Namespace = ing.Namespace
		}
		if key.Namespace != ing.Namespace {
			return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretNamespace, fmt.Sprintf(
				"proxy-ssl-secret %s is in another namespace; an Ingress may only use Secrets of its own namespace %s", key, ing.Namespace)}
		}
		s := secrets[key]
		if s == nil {
			return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretNotFound, fmt.Sprintf(
				"proxy-ssl-secret %s not found; the Ingress is not served until it exists", key)}
		}
		name := key.String()
		ca, crt, k := s.Data[caCertKey], s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		if len(ca) == 0 && len(crt) == 0 && len(k) == 0 {
			return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretInvalid, fmt.Sprintf(
				"proxy-ssl-secret %s holds neither %s nor %s/%s", key, caCertKey, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)}
		}
		data = map[string][]byte{}
		u.Secret = name
		if len(ca) > 0 {
			if !x509.NewCertPool().AppendCertsFromPEM(ca) {
				return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretInvalid, fmt.Sprintf(
					"proxy-ssl-secret %s: %s holds no PEM certificate", key, caCertKey)}
			}
			u.CAHash = snapshot.DataHash(ca)
			data[snapshot.CADataKey(name)] = ca
		}
		if len(crt) > 0 || len(k) > 0 {
			if _, err := tls.X509KeyPair(crt, k); err != nil {
				return upstreamTLS{}, nil, &rejection{ReasonProxySSLSecretInvalid, fmt.Sprintf(
					"proxy-ssl-secret %s: %s/%s are not a valid client certificate and key (%v)", key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)}
			}
			u.CertHash = snapshot.CertificateHash(crt, k)
			ck, kk := snapshot.CertificateDataKeys(name)
			data[ck], data[kk] = crt, k
		}
	}
	var warnings []Warning
	if u.Verify && u.CAHash == "" {
		warnings = append(warnings, Warning{ReasonAnnotationWarning,
			"proxy-ssl-verify is on without a proxy-ssl-secret ca.crt: the upstream is verified against the gateway's system roots"})
	}
	if u.Secret == "" && !u.Verify && u.VerifyDepth == 0 && u.ServerName == "" && !u.SNI && u.Protocols == nil && u.Ciphers == nil {
		u = nil // plain TLS without verification, the default
	}
	return upstreamTLS{settings: u, data: data}, warnings, nil
}

// withUpstreamTLSData adds the key material of the accepted primaries'
// upstream TLS to the instance Secret's data.
func withUpstreamTLSData(data map[string][]byte, primaries []*compiled) map[string][]byte {
	for _, c := range primaries {
		if len(c.upTLS.data) == 0 {
			continue
		}
		if data == nil {
			data = map[string][]byte{}
		}
		maps.Copy(data, c.upTLS.data)
	}
	return data
}
