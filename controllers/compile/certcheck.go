package compile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Reasons of certificate warnings: the certificate still ships, as in
// ingress-nginx, but clients will likely refuse it.
const (
	// ReasonTLSCertificateHostMismatch: the certificate does not cover a
	// host its spec.tls entry lists.
	ReasonTLSCertificateHostMismatch = "TLSCertificateHostMismatch"
	// ReasonTLSCertificateExpired: NotAfter is in the past.
	ReasonTLSCertificateExpired = "TLSCertificateExpired"
	// ReasonTLSCertificateNotYetValid: NotBefore is in the future.
	ReasonTLSCertificateNotYetValid = "TLSCertificateNotYetValid"
)

// certificateWarnings warns about spec.tls certificates of accepted
// primaries that do not cover their hosts, or are expired or not yet valid
// at now (skipped when now is zero: the compiler has no clock of its own).
// Only Secrets that are usable TLS Secrets are checked; the others are
// reported by certificates.
func certificateWarnings(primaries []*compiled, secrets []corev1.Secret, now time.Time) {
	leaves := map[types.NamespacedName]*x509.Certificate{}
	for _, c := range primaries {
		for i, t := range c.ing.Spec.TLS {
			if t.SecretName == "" {
				continue
			}
			k := types.NamespacedName{Namespace: c.ing.Namespace, Name: t.SecretName}
			leaf, seen := leaves[k]
			if !seen {
				leaf = tlsLeaf(secrets, k)
				leaves[k] = leaf
			}
			if leaf == nil {
				continue
			}
			notAfter := leaf.NotAfter.UTC().Format(time.RFC3339)
			for _, h := range t.Hosts {
				h = strings.ToLower(h)
				if snapshot.ValidHost(h, true) != nil || covers(leaf, h) {
					continue
				}
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSCertificateHostMismatch, fmt.Sprintf(
					"spec.tls[%d]: the certificate of Secret %s (NotAfter %s) does not cover host %q (it covers %s); it is served anyway and clients will likely refuse it",
					i, k, notAfter, h, coveredNames(leaf))})
			}
			if now.IsZero() {
				continue
			}
			hosts := strings.Join(t.Hosts, ", ")
			switch {
			case now.After(leaf.NotAfter):
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSCertificateExpired, fmt.Sprintf(
					"spec.tls[%d]: the certificate of Secret %s for host(s) %s expired at NotAfter %s; it is served anyway and clients will refuse it",
					i, k, hosts, notAfter)})
			case now.Before(leaf.NotBefore):
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSCertificateNotYetValid, fmt.Sprintf(
					"spec.tls[%d]: the certificate of Secret %s for host(s) %s is not valid before %s (NotAfter %s); it is served anyway and clients will refuse it",
					i, k, hosts, leaf.NotBefore.UTC().Format(time.RFC3339), notAfter)})
			}
		}
	}
}

// tlsLeaf returns the first certificate of a usable TLS Secret, or nil.
func tlsLeaf(secrets []corev1.Secret, k types.NamespacedName) *x509.Certificate {
	for i := range secrets {
		s := &secrets[i]
		if s.Namespace != k.Namespace || s.Name != k.Name || checkTLSSecret(s) != "" {
			continue
		}
		blk, _ := pem.Decode(s.Data[corev1.TLSCertKey])
		if blk == nil {
			return nil
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil
		}
		return leaf
	}
	return nil
}

// covers reports whether leaf is valid for host, a DNS name or a one-label
// wildcard ("*.example.com" is covered only by that same wildcard).
func covers(leaf *x509.Certificate, host string) bool {
	if strings.HasPrefix(host, "*.") {
		for _, n := range leaf.DNSNames {
			if strings.EqualFold(n, host) {
				return true
			}
		}
		return false
	}
	return leaf.VerifyHostname(host) == nil
}

func coveredNames(leaf *x509.Certificate) string {
	if len(leaf.DNSNames) == 0 {
		return "no DNS names"
	}
	return strings.Join(leaf.DNSNames, ", ")
}
