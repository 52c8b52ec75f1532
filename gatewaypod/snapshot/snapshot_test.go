package snapshot

import (
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
		"valid":                   {data: sealed(nil)},
		"not JSON":                {data: []byte("{nope"), wantErr: "decode snapshot"},
		"unknown field refused":   {data: []byte(`{"schemaVersion":1,"version":"x","surprise":true}`), wantErr: `unknown field "surprise"`},
		"tampered content":        {data: []byte(strings.Replace(string(sealed(nil)), "10.0.0.1", "10.0.0.2", 1)), wantErr: "does not match content hash"},
		"future schema":           {data: []byte(strings.Replace(string(sealed(nil)), `"schemaVersion":1`, `"schemaVersion":9`, 1)), wantErr: "schemaVersion 9 is not supported"},
		"relative path":           {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Path = "api" }), wantErr: `path "api" must start with '/'`},
		"unknown path type":       {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].PathType = "Regex" }), wantErr: `unknown pathType "Regex"`},
		"bad endpoint":            {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Backend.Endpoints = []string{"10.0.0.1"} }), wantErr: "is not host:port"},
		"port out of range":       {data: sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Backend.Endpoints = []string{"10.0.0.1:70000"} }), wantErr: "out of range"},
		"duplicate host":          {data: sealed(func(s *Snapshot) { s.Hosts = append(s.Hosts, s.Hosts[0]) }), wantErr: "duplicate host"},
		"inner wildcard":          {data: sealed(func(s *Snapshot) { s.Hosts[0].Host = "a.*.example.com" }), wantErr: "only a leading '*.' wildcard"},
		"upper-case host":         {data: sealed(func(s *Snapshot) { s.Hosts[0].Host = "A.example.com" }), wantErr: "not lower-case"},
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
