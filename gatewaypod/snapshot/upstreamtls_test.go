package snapshot

import (
	"errors"
	"strings"
	"testing"
)

func withUpstreamTLS(protocol string, t *UpstreamTLS) []byte {
	return sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Upstream = &Upstream{Protocol: protocol, TLS: t} })
}

func TestDecodeUpstreamTLS(t *testing.T) {
	hash := DataHash([]byte("ca"))
	tests := map[string]struct {
		data    []byte
		wantErr string
	}{
		"grpc without tls": {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Upstream = &Upstream{Protocol: ProtocolGRPC} })},
		"full https": {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Secret: "ns/ca", CAHash: hash, CertHash: hash, Verify: true, VerifyDepth: 2,
			ServerName: "api.ns.svc", SNI: true, Protocols: []string{TLSv12}, Ciphers: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}})},
		"grpcs verify with system roots": {data: withUpstreamTLS(ProtocolGRPCS, &UpstreamTLS{Verify: true})},
		"tls on plain http":              {data: withUpstreamTLS(ProtocolHTTP, &UpstreamTLS{Verify: true}), wantErr: "need protocol HTTPS or GRPCS"},
		"tls on grpc":                    {data: withUpstreamTLS(ProtocolGRPC, &UpstreamTLS{}), wantErr: "need protocol HTTPS or GRPCS"},
		"hash without secret":            {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{CAHash: hash}), wantErr: "need secret"},
		"secret pins nothing":            {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Secret: "ns/ca"}), wantErr: "pins neither"},
		"secret not namespaced":          {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Secret: "ca", CAHash: hash}), wantErr: "not namespace/name"},
		"bad hash":                       {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Secret: "ns/ca", CAHash: "nothex"}), wantErr: "16 hex digits"},
		"old protocol":                   {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Protocols: []string{"TLSv1"}}), wantErr: `protocol "TLSv1"`},
		"weak cipher":                    {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{Ciphers: []string{"TLS_RSA_WITH_RC4_128_SHA"}}), wantErr: "not an allowed TLS 1.2 suite"},
		"bad server name":                {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{ServerName: "a b"}), wantErr: "serverName"},
		"bad depth":                      {data: withUpstreamTLS(ProtocolHTTPS, &UpstreamTLS{VerifyDepth: -1}), wantErr: "verifyDepth"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateData(t *testing.T) {
	ca, crt, key := []byte("ca-pem"), []byte("crt-pem"), []byte("key-pem")
	ck, kk := CertificateDataKeys("ns/up")
	full := map[string][]byte{CADataKey("ns/up"): ca, ck: crt, kk: key}
	tlsRef := &UpstreamTLS{Secret: "ns/up", CAHash: DataHash(ca), CertHash: CertificateHash(crt, key), Verify: true}
	s, err := Decode(withUpstreamTLS(ProtocolHTTPS, tlsRef))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateData(full); err != nil {
		t.Errorf("ValidateData with all material: %v", err)
	}
	m, err := tlsRef.Material(full)
	if err != nil || string(m.CA) != "ca-pem" || string(m.Cert) != "crt-pem" || string(m.Key) != "key-pem" {
		t.Errorf("Material = %+v, %v", m, err)
	}
	tests := map[string]struct {
		data map[string][]byte
		want error
	}{
		"no data":            {data: nil, want: ErrUpstreamTLSMissing},
		"no CA":              {data: map[string][]byte{ck: crt, kk: key}, want: ErrUpstreamTLSMissing},
		"no key":             {data: map[string][]byte{CADataKey("ns/up"): ca, ck: crt}, want: ErrUpstreamTLSMissing},
		"CA changed":         {data: map[string][]byte{CADataKey("ns/up"): []byte("other"), ck: crt, kk: key}, want: ErrUpstreamTLSHashMismatch},
		"client key changed": {data: map[string][]byte{CADataKey("ns/up"): ca, ck: crt, kk: []byte("other")}, want: ErrUpstreamTLSHashMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := s.ValidateData(tc.data)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "hosts[0].routes[0].upstream.tls") {
				t.Errorf("ValidateData = %v, want %v naming the route", err, tc.want)
			}
			if strings.Contains(err.Error(), "pem") || strings.Contains(err.Error(), "other") {
				t.Errorf("error %q shows key material", err)
			}
		})
	}
}
