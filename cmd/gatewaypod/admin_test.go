/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestAdminSnapshot(t *testing.T) {
	var served atomic.Pointer[snapshot.Snapshot]
	h := adminHandler(&served, false)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/debug/snapshot"); code != http.StatusServiceUnavailable {
		t.Errorf("before a snapshot: %d, want 503", code)
	}
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "app.test", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "ns/app:80", Endpoints: []string{"10.0.0.1:80"}},
	}}}}}
	snapshot.Seal(s)
	served.Store(s)
	code, body := get("/debug/snapshot")
	if code != http.StatusOK || !strings.Contains(body, `"app.test"`) || !strings.Contains(body, s.Version) {
		t.Errorf("snapshot: %d %s", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof without --enable-pprof: %d, want 404", code)
	}
	if code, _ := func() (int, string) {
		rec := httptest.NewRecorder()
		adminHandler(&served, true).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		return rec.Code, ""
	}(); code != http.StatusOK {
		t.Errorf("pprof enabled: %d", code)
	}
}

func TestRedact(t *testing.T) {
	in := map[string]any{
		"hosts": []any{map[string]any{"host": "a", "tls": map[string]any{"privateKey": "PEM", "cert": "CERT"}}},
		"jwt":   map[string]any{"secretRef": "s", "issuer": "i"}, "apiToken": "t", "none": nil,
	}
	out := redact(in).(map[string]any)
	tls := out["hosts"].([]any)[0].(map[string]any)["tls"].(map[string]any)
	if tls["privateKey"] != "[redacted]" || tls["cert"] != "CERT" {
		t.Errorf("tls = %v", tls)
	}
	if j := out["jwt"].(map[string]any); j["secretRef"] != "[redacted]" || j["issuer"] != "i" {
		t.Errorf("jwt = %v", j)
	}
	if out["apiToken"] != "[redacted]" || out["none"] != nil {
		t.Errorf("out = %v", out)
	}
}
