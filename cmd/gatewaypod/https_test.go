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
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func selfSigned(t *testing.T, name string) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// TestRunHTTPS boots with --https-address and the certificates of a
// mounted TLS directory, and serves HTTP/2 over TLS.
func TestRunHTTPS(t *testing.T) {
	t.Run("http2", func(t *testing.T) { testRunHTTPS(t, false) })
	// --http2=false: a client asking for h2 speaks HTTP/1.1, and
	// --access-log=full logs the request on stdout.
	t.Run("http1 with access log", func(t *testing.T) { testRunHTTPS(t, true) })
}

func testRunHTTPS(t *testing.T, http1 bool) {
	t.Setenv(podflags.EnvPodName, "")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Forwarded-Proto"))
	}))
	defer backend.Close()

	crt, key := selfSigned(t, "app.test")
	dir := t.TempDir()
	ck, kk := snapshot.CertificateDataKeys("ns/app-tls")
	if err := os.WriteFile(filepath.Join(dir, ck), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, kk), key, 0o600); err != nil {
		t.Fatal(err)
	}
	snap := &snapshot.Snapshot{
		Hosts: []snapshot.VirtualHost{{Host: "app.test", Routes: []snapshot.Route{{
			Path: "/", PathType: snapshot.PathPrefix,
			Backend: snapshot.Backend{Name: "ns/app:80", Endpoints: []string{backend.Listener.Addr().String()}},
		}}}},
		Certificates: []snapshot.Certificate{{Secret: "ns/app-tls", Hash: snapshot.CertificateHash(crt, key), Hosts: []string{"app.test"}}},
	}
	file := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	if err := os.WriteFile(file, snapshot.Seal(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	a := freeAddrs(t, 3)
	httpAddr, healthAddr, httpsAddr := a[0], a[1], a[2]
	flags := podflags.Flags{HTTPAddress: httpAddr, HealthAddress: healthAddr, SnapshotFile: file, Instance: "gw",
		HTTPSAddress: httpsAddr, TLSDir: dir}
	wantProto := "HTTP/2.0"
	accessLog := &syncBuffer{}
	if http1 {
		flags.DisableHTTP2, flags.AccessLog, wantProto = true, podflags.AccessLogFull, "HTTP/1.1"
		old := accessLogOut
		accessLogOut = accessLog
		defer func() { accessLogOut = old }()
	}
	args := flags.Args()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs) }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(crt)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "app.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(5 * time.Second)
	var resp *http.Response
	for {
		req, _ := http.NewRequest(http.MethodGet, "https://"+httpsAddr+"/", nil)
		req.Host = "app.test"
		var err error
		if resp, err = client.Do(req); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer after 5s (last: %v); logs:\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello https" || resp.Proto != wantProto {
		t.Errorf("HTTPS GET = %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	_, metrics, err := httpGet("http://"+healthAddr+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`portico_gatewaypod_tls_certificates{gateway="gw"} 1`,
		`portico_gatewaypod_snapshot_info{gateway="gw",version="` + snap.Version + `"} 1`,
		`portico_gatewaypod_snapshot_applied_timestamp_seconds{gateway="gw"}`,
		`portico_gatewaypod_request_duration_seconds_count{backend="ns/app:80",code="2xx",gateway="gw"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if http1 {
		// run has returned, so the log is flushed.
		if got := accessLog.String(); !strings.Contains(got, `"host":"app.test","path":"/","status":200,`) ||
			strings.Count(got, "\n") != 1 {
			t.Errorf("access log = %q", got)
		}
	} else if got := accessLog.String(); got != "" {
		t.Errorf("access log written while off: %q", got)
	}
}
