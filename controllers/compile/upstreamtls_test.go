package compile

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// The upstream TLS key material travels only in TLSData, byte for byte, and
// a change of the Secret changes the snapshot version (the pin), so the
// gateway picks up the new material.
func TestUpstreamTLSData(t *testing.T) {
	in := loadInputs(t, "testdata/upstreamtls.in.yaml", "gw")
	var mtls *corev1.Secret
	for i := range in.Secrets {
		if in.Secrets[i].Namespace == "shop" && in.Secrets[i].Name == "upstream-mtls" {
			mtls = &in.Secrets[i]
		}
	}
	out := Compile(in)
	ck, kk := snapshot.CertificateDataKeys("shop/upstream-mtls")
	for k, want := range map[string][]byte{
		snapshot.CADataKey("shop/upstream-mtls"): mtls.Data["ca.crt"],
		ck:                                       mtls.Data["tls.crt"],
		kk:                                       mtls.Data["tls.key"],
	} {
		if !bytes.Equal(out.TLSData[k], want) {
			t.Errorf("TLSData[%s] differs from the Secret", k)
		}
	}
	for _, secret := range [][]byte{mtls.Data["tls.key"], mtls.Data["ca.crt"]} {
		if bytes.Contains(out.Encoded, secret) || bytes.Contains(out.Encoded, []byte(base64.StdEncoding.EncodeToString(secret))) {
			t.Error("the ConfigMap payload holds key material")
		}
	}
	if err := out.Snapshot.ValidateData(out.TLSData); err != nil {
		t.Errorf("the snapshot's upstream TLS material is not all in TLSData: %v", err)
	}

	// Rotate the client certificate: swap in another valid pair.
	in2 := loadInputs(t, "testdata/upstreamtls.in.yaml", "gw")
	for i := range in2.Secrets {
		s := &in2.Secrets[i]
		if s.Namespace == "shop" && s.Name == "upstream-mtls" {
			crt, key := selfSignedPEM(t, "rotated")
			s.Data["tls.crt"], s.Data["tls.key"] = crt, key
		}
	}
	out2 := Compile(in2)
	if out2.Snapshot.Version == out.Snapshot.Version {
		t.Error("a new client certificate did not change the snapshot version")
	}
	if err := out.Snapshot.ValidateData(out2.TLSData); err == nil {
		t.Error("the old snapshot validates against the rotated data; the pin does not cover the client certificate")
	}
}

// selfSignedPEM returns a PEM certificate and key for cn.
func selfSignedPEM(t *testing.T, cn string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(0, 0).Add(100 * 365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}
