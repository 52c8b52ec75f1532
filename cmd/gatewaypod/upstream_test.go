package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestRunUpstreamTLSAndH2C runs gatewaypod with an HTTPS route verified
// with a CA from the mounted TLS directory, and a GRPC route reached by an
// h2c client on the plain port; /debug/snapshot shows no key material.
func TestRunUpstreamTLSAndH2C(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	crt, key := selfSigned(t, "backend.test")
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tls "+r.TLS.ServerName)
	}))
	tlsBackend.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsBackend.StartTLS()
	defer tlsBackend.Close()
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	var h2cProto atomic.Value
	h2cBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h2cProto.Store(r.Proto)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}))
	h2cBackend.Config.Protocols = h2c
	h2cBackend.Start()
	defer h2cBackend.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, snapshot.CADataKey("ns/up-ca")), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	upTLS := &snapshot.UpstreamTLS{Secret: "ns/up-ca", CAHash: snapshot.DataHash(crt), Verify: true, ServerName: "backend.test", SNI: true}
	snap := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "app.test", Routes: []snapshot.Route{
		{Path: "/grpc.health.v1.Health", PathType: snapshot.PathPrefix, Upstream: &snapshot.Upstream{Protocol: snapshot.ProtocolGRPC},
			Backend: snapshot.Backend{Name: "ns/grpc:50051", Endpoints: []string{h2cBackend.Listener.Addr().String()}}},
		{Path: "/", PathType: snapshot.PathPrefix, Upstream: &snapshot.Upstream{Protocol: snapshot.ProtocolHTTPS, TLS: upTLS},
			Backend: snapshot.Backend{Name: "ns/app:443", Endpoints: []string{tlsBackend.Listener.Addr().String()}}},
	}}}}
	file := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	if err := os.WriteFile(file, snapshot.Seal(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	a := freeAddrs(t, 4)
	flags := podflags.Flags{HTTPAddress: a[0], HealthAddress: a[1], HTTPSAddress: a[2], AdminAddress: a[3],
		SnapshotFile: file, Instance: "gw", TLSDir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, flags.Args(), logs) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, err := httpGet("http://"+a[0]+"/", "app.test")
		if err == nil && code == 200 {
			if body != "tls backend.test" {
				t.Fatalf("HTTPS upstream answered %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 through the HTTPS upstream after 5s (last: %d %q %v); logs:\n%s", code, body, err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	tr := &http.Transport{Protocols: h2c}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a[0]+"/grpc.health.v1.Health/Check", strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Host = "app.test"
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("h2c request to the plain port: %v", err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Trailer.Get("Grpc-Status") != "0" || h2cProto.Load() != "HTTP/2.0" {
		t.Errorf("h2c: %s trailers %v, upstream saw %v", resp.Proto, resp.Trailer, h2cProto.Load())
	}

	_, dump, err := httpGet("http://"+a[3]+"/debug/snapshot", "")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(dump), &v); err != nil {
		t.Fatalf("/debug/snapshot: %v", err)
	}
	if strings.Contains(dump, "BEGIN") || !strings.Contains(dump, upTLS.CAHash) {
		t.Errorf("/debug/snapshot shows key material or lacks the pin:\n%s", dump)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(fmt.Sprint("run did not return after cancel; logs:\n", logs))
	}
}
