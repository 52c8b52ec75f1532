package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/internal/testcerts"
)

// TestRunClientAuth boots gatewaypod with a host that requires client
// certificates and its CA bundle in the mounted TLS directory: the process
// wires the SNI lookup and the CA pools, so a client with a certificate of
// that CA passes and one without gets 400.
func TestRunClientAuth(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("Ssl-Client-Verify")+" "+r.Header.Get("Ssl-Client-Subject-Dn"))
	}))
	defer backend.Close()

	srv := testcerts.New(t, nil, testcerts.Options{DNSNames: []string{"mtls.test"}})
	ca := testcerts.New(t, nil, testcerts.Options{CommonName: "client CA", CA: true})
	client := testcerts.New(t, ca, testcerts.Options{CommonName: "alice", Client: true}).TLS()
	dir := t.TempDir()
	ck, kk := snapshot.CertificateDataKeys("ns/mtls-tls")
	for name, b := range map[string][]byte{ck: srv.CertPEM, kk: srv.KeyPEM, snapshot.CADataKey("ns/client-ca"): ca.CertPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snap := &snapshot.Snapshot{
		Hosts: []snapshot.VirtualHost{{Host: "mtls.test", ClientAuth: &snapshot.ClientAuth{CASecret: "ns/client-ca", CAHash: snapshot.DataHash(ca.CertPEM)},
			Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix,
				Backend: snapshot.Backend{Name: "ns/app:80", Endpoints: []string{backend.Listener.Addr().String()}}}}}},
		Certificates: []snapshot.Certificate{{Secret: "ns/mtls-tls", Hash: snapshot.CertificateHash(srv.CertPEM, srv.KeyPEM), Hosts: []string{"mtls.test"}}},
	}
	file := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	if err := os.WriteFile(file, snapshot.Seal(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	a := freeAddrs(t, 3)
	flags := podflags.Flags{HTTPAddress: a[0], HealthAddress: a[1], SnapshotFile: file, Instance: "gw", HTTPSAddress: a[2], TLSDir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, flags.Args(), logs) }()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srv.CertPEM)
	do := func(cert *tls.Certificate) (int, string, error) {
		cfg := &tls.Config{RootCAs: roots, ServerName: "mtls.test"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+a[2]+"/", nil)
		req.Host = "mtls.test"
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, err := do(&client)
		if err == nil && code == 200 {
			if body != "SUCCESS CN=alice,O=Portico Test" {
				t.Errorf("upstream saw %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 with a client certificate after 5s (last: %d %q %v); logs:\n%s", code, body, err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, err := do(nil); err != nil || code != http.StatusBadRequest {
		t.Errorf("without a client certificate: %d %v, want 400", code, err)
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
}
