package snapshot

import (
	"fmt"
	"strings"
	"testing"
)

func sealed(mut func(*Snapshot)) []byte {
	s := &Snapshot{Hosts: []VirtualHost{{Host: "a.example.com", Routes: []Route{
		{Path: "/", PathType: PathPrefix, Backend: Backend{Name: "ns/web:80", Endpoints: []string{"10.0.0.1:8080"}}},
	}}}}
	if mut != nil {
		mut(s)
	}
	return Seal(s)
}

func TestDecode(t *testing.T) {
	tests := map[string]struct {
		data    []byte
		wantErr string
	}{
		"valid":                  {data: sealed(nil)},
		"not JSON":               {data: []byte("{nope"), wantErr: "decode snapshot"},
		"unknown field refused":  {data: []byte(`{"schemaVersion":1,"version":"x","surprise":true}`), wantErr: `unknown field "surprise"`},
		"tampered content":       {data: []byte(strings.Replace(string(sealed(nil)), "10.0.0.1", "10.0.0.2", 1)), wantErr: "does not match content hash"},
		"future schema":          {data: []byte(strings.Replace(string(sealed(nil)), `"schemaVersion":1`, `"schemaVersion":9`, 1)), wantErr: "schemaVersion 9 is not supported"},
		"relative path":          {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Path = "api" }), wantErr: `path "api" must start with '/'`},
		"unknown path type":      {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].PathType = "Glob" }), wantErr: `unknown pathType "Glob"`},
		"bad regex path":         {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].PathType = PathRegex; s.Hosts[0].Routes[0].Path = "/(" }), wantErr: "not a valid regular expression"},
		"trailing data":          {data: append(sealed(nil), []byte(`{}`)...), wantErr: "trailing data"},
		"bad compressed payload": {data: []byte("H4sIAAAA!!"), wantErr: "compressed payload"},
		"canary weights overflow": {data: sealed(func(s *Snapshot) {
			s.Hosts[0].Routes[0].Canaries = []Canary{{Backend: Backend{Name: "a"}, Weight: 60}, {Backend: Backend{Name: "b"}, Weight: 50}}
		}), wantErr: "add up to 110"},
		"canary totals differ": {data: sealed(func(s *Snapshot) {
			s.Hosts[0].Routes[0].Canaries = []Canary{{Backend: Backend{Name: "a"}, WeightTotal: 1000}, {Backend: Backend{Name: "b"}}}
		}), wantErr: "weightTotal differs"},
		"canary value without header": {data: sealed(func(s *Snapshot) {
			s.Hosts[0].Routes[0].Canaries = []Canary{{Backend: Backend{Name: "a"}, HeaderValues: []string{"x"}}}
		}), wantErr: "need header"},
		"bad redirect":              {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Redirect = &Redirect{URL: "javascript:alert(1)", Code: 301} }), wantErr: "not an absolute http(s) URL"},
		"bad redirect code":         {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Redirect = &Redirect{URL: "https://a.b/", Code: 200} }), wantErr: "code 200"},
		"bad rewrite":               {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Rewrite = &Rewrite{Target: "http://evil/"} }), wantErr: "target"},
		"bad cidr":                  {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Access = &Access{Allow: []string{"10.0.0.1/8"}} }), wantErr: "canonical CIDR"},
		"bad origin":                {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].CORS = &CORS{AllowOrigins: []string{"https://a.*.com"}} }), wantErr: "origin"},
		"bad hash key":              {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Balancer = &Balancer{HashBy: "${lua code}"} }), wantErr: "hash key"},
		"bad protocol":              {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Upstream = &Upstream{Protocol: "FCGI"} }), wantErr: "unknown protocol"},
		"bad affinity":              {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Balancer = &Balancer{Affinity: &Affinity{Cookie: "a b"}} }), wantErr: "cookie name"},
		"negative limit":            {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Limits = &Limits{RPS: -1} }), wantErr: "negative"},
		"alias duplicates host":     {data: sealed(func(s *Snapshot) { s.Hosts[0].Aliases = []string{"a.example.com"} }), wantErr: "duplicates a host"},
		"redirect host with routes": {data: sealed(func(s *Snapshot) { s.Hosts[0].RedirectHost = "b.example.com" }), wantErr: "has no routes"},
		"certificate host twice": {data: sealed(func(s *Snapshot) {
			s.Certificates = []Certificate{{Secret: "a/b", Hash: "0123456789abcdef", Hosts: []string{"x.com"}}, {Secret: "a/c", Hash: "0123456789abcdef", Hosts: []string{"x.com"}}}
		}), wantErr: "has another certificate"},
		"certificate bad hash": {data: sealed(func(s *Snapshot) {
			s.Certificates = []Certificate{{Secret: "a/b", Hash: "xyz", Hosts: []string{"x.com"}}}
		}), wantErr: "16 hex digits"},
		"full valid route":        {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0] = fullRoute() })},
		"bad endpoint":            {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Backend.Endpoints = []string{"10.0.0.1"} }), wantErr: "is not host:port"},
		"port out of range":       {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Backend.Endpoints = []string{"10.0.0.1:70000"} }), wantErr: "out of range"},
		"duplicate host":          {data: sealed(func(s *Snapshot) { s.Hosts = append(s.Hosts, s.Hosts[0]) }), wantErr: "duplicate host"},
		"inner wildcard":          {data: sealed(func(s *Snapshot) { s.Hosts[0].Host = "a.*.example.com" }), wantErr: "at most a leading '*.' wildcard"},
		"upper-case host":         {data: sealed(func(s *Snapshot) { s.Hosts[0].Host = "A.example.com" }), wantErr: "not a lower-case DNS name"},
		"default backend unnamed": {data: sealed(func(s *Snapshot) { s.DefaultBackend = &Backend{} }), wantErr: "defaultBackend: name is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Decode(tc.data)
			if tc.wantErr == "" {
				if err != nil || s == nil {
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

func TestHashIgnoresVersionAndTracksContent(t *testing.T) {
	a := &Snapshot{SchemaVersion: SchemaVersion}
	b := &Snapshot{SchemaVersion: SchemaVersion, Version: "anything"}
	if Hash(a) != Hash(b) {
		t.Error("Hash depends on Version")
	}
	c := &Snapshot{SchemaVersion: SchemaVersion, DefaultBackend: &Backend{Name: "x"}}
	if Hash(a) == Hash(c) {
		t.Error("Hash ignores content")
	}
	if !strings.HasPrefix(Hash(a), "v1-") {
		t.Errorf("Hash = %s, want the schema prefix", Hash(a))
	}
}

func fullRoute() Route {
	body := int64(8 << 20)
	return Route{Path: "/a(.*)", PathType: PathRegex, Backend: Backend{Name: "ns/web:80", Endpoints: []string{"10.0.0.1:80", "[fd00::1]:80"}}, Source: "ns/ing",
		Canaries: []Canary{
			{Backend: Backend{Name: "ns/c1:80"}, Source: "ns/c1", Header: "X-Canary", HeaderPattern: "^b", Cookie: "c", Weight: 10, WeightTotal: 1000},
			{Backend: Backend{Name: "ns/c2:80"}, Header: "X-Canary", HeaderValues: []string{"x", "y"}, CookieValues: []string{"v"}, Cookie: "d", Weight: 990, WeightTotal: 1000,
				Balancer: &Balancer{Policy: BalanceEWMA}},
		},
		Rewrite:  &Rewrite{Target: "/$1", ForwardedPrefix: "/a"},
		Redirect: &Redirect{SSL: true, AppRoot: "/app"},
		CORS:     &CORS{AllowOrigins: []string{"*", "https://*.a.com", "http://localhost:3000"}, AllowMethods: []string{"GET"}, AllowHeaders: []string{"X-A", "*"}, AllowCredentials: true, MaxAgeSeconds: 5},
		Access:   &Access{Allow: []string{"10.0.0.0/8", "::1/128"}, Deny: []string{"10.1.0.0/16"}},
		Limits:   &Limits{RPS: 5, RPM: 100, Connections: 3, BurstMultiplier: 2, MaxBodyBytes: &body},
		Balancer: &Balancer{HashBy: "$http_x_user", Affinity: &Affinity{Cookie: "INGRESSCOOKIE", Mode: "persistent", SameSite: "Lax", Path: "/", CanaryBehavior: "sticky"}},
		Upstream: &Upstream{Protocol: ProtocolGRPCS, Host: "svc.internal:8443", ConnectTimeoutMs: 5000, ReadTimeoutMs: 60000, Tries: 3},
	}
}

func TestEncodeCompressesLargeSnapshots(t *testing.T) {
	small := sealed(nil)
	if got := Encode(small); string(got) != string(small) {
		t.Fatalf("small snapshot was re-encoded")
	}
	s := &Snapshot{}
	for i := range 600 {
		r := fullRoute()
		r.Path = fmt.Sprintf("/p%d(.*)", i)
		s.Hosts = append(s.Hosts, VirtualHost{Host: fmt.Sprintf("h%d.example.com", i), Routes: []Route{r}})
	}
	raw := Seal(s)
	enc := Encode(raw)
	if !IsCompressed(enc) || len(enc) >= len(raw)/4 {
		t.Fatalf("Encode: compressed=%v, %d -> %d bytes", IsCompressed(enc), len(raw), len(enc))
	}
	if again := Encode(raw); string(again) != string(enc) {
		t.Fatal("Encode is not deterministic")
	}
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != s.Version || len(got.Hosts) != 600 {
		t.Fatalf("round trip: version %s hosts %d", got.Version, len(got.Hosts))
	}
}

func TestCertificateKeys(t *testing.T) {
	crt, key := CertificateDataKeys("ns/my.secret")
	if crt != "ns_my.secret.crt" || key != "ns_my.secret.key" {
		t.Errorf("CertificateDataKeys = %s %s", crt, key)
	}
	if a, b := CertificateHash([]byte("a"), []byte("bc")), CertificateHash([]byte("ab"), []byte("c")); a == b || len(a) != 16 {
		t.Errorf("CertificateHash does not separate chain and key: %s %s", a, b)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-seals to the
// same version and validates again.
func FuzzDecode(f *testing.F) {
	f.Add(sealed(nil))
	f.Add(sealed(func(s *Snapshot) { s.Hosts[0].Routes[0] = fullRoute() }))
	f.Add(Encode(sealed(nil)))
	f.Add([]byte(`{"schemaVersion":1,"version":"v1-0","hosts":[{"host":"*.a","routes":[{"path":"/(","pathType":"Regex","backend":{"name":"x"}}]}]}`))
	f.Add([]byte("H4sI"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		v := s.Version
		Seal(s)
		if s.Version != v {
			t.Fatalf("re-sealed version %s != %s", s.Version, v)
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted snapshot no longer validates: %v", err)
		}
	})
}
