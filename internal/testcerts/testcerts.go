// Package testcerts issues throw-away certificates for tests: a CA, and
// server or client leaf certificates signed by it, with chosen names and
// validity, as PEM and as tls.Certificate. Keys are ECDSA P-256, which is
// fast to generate.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// Cert is an issued certificate with its key.
type Cert struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key signs for it.
	Key *ecdsa.PrivateKey
	// CertPEM is the certificate (only) and KeyPEM the PKCS#8 key, PEM.
	CertPEM, KeyPEM []byte
}

// Options shape a certificate; zero fields take defaults.
type Options struct {
	// CommonName defaults to the first DNS name, else "test".
	CommonName string
	// DNSNames are the subject alternative names.
	DNSNames []string
	// NotBefore defaults to a minute ago, NotAfter to an hour from now.
	NotBefore, NotAfter time.Time
	// Client makes a client-authentication leaf (ExtKeyUsageClientAuth)
	// instead of a server one.
	Client bool
	// CA makes a certificate authority.
	CA bool
}

// T is the part of testing.TB that New uses (GinkgoT() has it too).
type T interface {
	Helper()
	Fatal(args ...any)
}

// New issues a certificate signed by parent, or self-signed when parent is nil.
func New(t T, parent *Cert, o Options) *Cert {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	cn := o.CommonName
	if cn == "" {
		cn = "test"
		if len(o.DNSNames) > 0 {
			cn = o.DNSNames[0]
		}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Minute)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Portico Test"}}, DNSNames: o.DNSNames,
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	switch {
	case o.CA:
		tmpl.IsCA, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	case o.Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signKey := tmpl, k
	if parent != nil {
		signer, signKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: c, Key: k,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})}
}

// TLS returns the certificate, followed by chain (intermediates), for a
// tls.Config.
func (c *Cert) TLS(chain ...*Cert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, x := range chain {
		tc.Certificate = append(tc.Certificate, x.Cert.Raw)
	}
	return tc
}
