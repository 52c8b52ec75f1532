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
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portico-dev/portico/gatewaypod/jwtauth/jwtauthtest"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestRunJWTAndHealth: the process reads the JWT keys from the mounted
// instance Secret even without a TLS listener, enforces them, and reports
// the active health of the snapshot's endpoints.
func TestRunJWTAndHealth(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-User"))
	}))
	defer backend.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, snapshot.JWTDataKey("team/keys")), pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	be := backend.Listener.Addr().String()
	snap := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "api.test", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix,
		Backend: snapshot.Backend{Name: "team/api:80", Endpoints: []string{be},
			HealthCheck: &snapshot.HealthCheck{IntervalMs: 100, TimeoutMs: 50, HealthyThreshold: 1, UnhealthyThreshold: 1}},
		JWT: &snapshot.JWT{Secret: "team/keys", Hash: snapshot.DataHash(pemKey), Audiences: []string{"api"},
			ClaimsToHeaders: []snapshot.ClaimHeader{{Claim: "sub", Header: "X-User"}}},
	}}}}}
	file := filepath.Join(dir, snapshot.ConfigMapKey)
	if err := os.WriteFile(file, snapshot.Seal(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	a := freeAddrs(t, 2)
	args := podflags.Flags{HTTPAddress: a[0], HealthAddress: a[1], SnapshotFile: file, TLSDir: tlsDir, Instance: "gw"}.Args()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()

	token := jwtauthtest.Sign(t, jose.ES256, key, "", map[string]any{"sub": "alice", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()})
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a[0]+"/", nil)
		req.Host = "api.test"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Poll until the snapshot and the keys are loaded (the first answers
	// may be 404 or 503), then check every answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, body := get("Bearer " + token); code == http.StatusOK && body == "hello alice" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("valid token: %d %q after 10 s; logs:\n%s", code, body, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := get("Bearer " + token + "x"); code != http.StatusUnauthorized {
		t.Errorf("tampered token: %d, want 401", code)
	}
	for {
		_, metrics, err := httpGet("http://"+a[1]+"/metrics", "")
		want := `portico_gatewaypod_endpoint_healthy{backend="team/api:80",endpoint="` + be + `",gateway="gw"} 1`
		if err == nil && strings.Contains(metrics, want) && strings.Contains(metrics, `portico_gatewaypod_jwt_rejected_total{gateway="gw",reason="invalid"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s or the JWT rejection (err %v)", want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
