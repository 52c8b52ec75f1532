package snapshot

import (
	"strings"
	"testing"
)

func TestDecodeClientAuthAndCustomErrors(t *testing.T) {
	ca := func(mut func(*ClientAuth)) []byte {
		return sealed(func(s *Snapshot) {
			c := &ClientAuth{CASecret: "ns/ca", CAHash: "0123456789abcdef"}
			if mut != nil {
				mut(c)
			}
			s.Hosts[0].ClientAuth = c
		})
	}
	ce := func(c *CustomErrors) []byte {
		return sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].CustomErrors = c })
	}
	tests := map[string]struct {
		data    []byte
		wantErr string
	}{
		"client auth valid": {data: ca(func(c *ClientAuth) {
			c.Verify, c.Depth, c.ErrorPage, c.PassCertificate, c.MatchCN = VerifyOptionalNoCA, 3, "https://errors.example.com/cert", true, "CN=(a|b)"
		})},
		"client auth matchCN without CN=": {data: ca(func(c *ClientAuth) { c.MatchCN = "a" }), wantErr: "matchCN"},
		"client auth matchCN bad regex":   {data: ca(func(c *ClientAuth) { c.MatchCN = "CN=(" }), wantErr: "not a valid RE2"},
		"client auth bad secret":          {data: ca(func(c *ClientAuth) { c.CASecret = "ca" }), wantErr: "not namespace/name"},
		"client auth bad hash":            {data: ca(func(c *ClientAuth) { c.CAHash = "zz" }), wantErr: "16 hex digits"},
		"client auth bad verify":          {data: ca(func(c *ClientAuth) { c.Verify = "maybe" }), wantErr: `verify "maybe"`},
		"client auth bad depth":           {data: ca(func(c *ClientAuth) { c.Depth = -1 }), wantErr: "depth -1"},
		"client auth bad error page":      {data: ca(func(c *ClientAuth) { c.ErrorPage = "/relative" }), wantErr: "errorPage"},
		"custom errors valid":             {data: ce(&CustomErrors{Codes: []int{404, 503}, Backend: &Backend{Name: "ns/errors:80"}})},
		"custom errors no codes":          {data: ce(&CustomErrors{}), wantErr: "no codes"},
		"custom errors out of range":      {data: ce(&CustomErrors{Codes: []int{302}}), wantErr: "302 is not 400..599"},
		"custom errors unsorted":          {data: ce(&CustomErrors{Codes: []int{503, 404}}), wantErr: "sorted and unique"},
		"custom errors bad backend":       {data: ce(&CustomErrors{Codes: []int{503}, Backend: &Backend{Name: "x", Endpoints: []string{"nope"}}}), wantErr: "customErrors.backend"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
