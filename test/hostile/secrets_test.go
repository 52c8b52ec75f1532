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

package hostile

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestNoKeyMaterialExposed serves TLS from a key and proxies requests that
// carry credentials, then reads everything the process shows: the admin
// /debug/snapshot, /metrics, and its whole log (access log on). None holds
// the private key or the credentials.
func TestNoKeyMaterialExposed(t *testing.T) {
	public := newBackend(t, "public")
	tlsDir := t.TempDir()
	cert := tlsFiles(t, tlsDir, "team/app-tls", appHost)
	cert.Default = true
	_, kk := snapshot.CertificateDataKeys("team/app-tls")
	keyPEM, err := os.ReadFile(filepath.Join(tlsDir, kk))
	if err != nil {
		t.Fatal(err)
	}
	var markers []string // the base64 lines of the key's PEM body
	for _, l := range strings.Split(string(keyPEM), "\n") {
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			markers = append(markers, l)
		}
	}
	const token = "Bearer s3cr3t-t0ken-for-hostile-test"
	const cookie = "session=c00kie-for-hostile-test"
	if len(markers) == 0 {
		t.Fatal("no base64 line in the key PEM")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	s := &snapshot.Snapshot{
		Hosts:        []snapshot.VirtualHost{{Host: appHost, Routes: []snapshot.Route{prefixRoute("/public", public)}}},
		Certificates: []snapshot.Certificate{cert},
	}
	gw := startGateway(t, "secrets", s, podflags.Flags{HTTPSAddress: "on", TLSDir: tlsDir, AdminAddress: admin,
		AccessLog: podflags.AccessLogFull, AccessLogFields: strings.Join(podflags.AccessLogFieldNames, ",")})

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: appHost}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	served := 0
	for end := time.Now().Add(10 * time.Second); served < 5 && time.Now().Before(end); {
		req, _ := http.NewRequest(http.MethodGet, "https://"+gw.https+"/public/x?token=abc", nil)
		req.Host = appHost
		req.Header.Set("Authorization", token)
		req.Header.Set("Cookie", cookie)
		resp, err := c.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // the certificate is loaded shortly after start
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			served++
		}
	}
	if served < 5 {
		t.Fatalf("%d requests served over TLS, want 5", served)
	}
	code, snap := gw.get(t, admin, "/debug/snapshot")
	if code != http.StatusOK || !strings.Contains(snap, cert.Hash) {
		t.Fatalf("/debug/snapshot = %d %q, want the served snapshot", code, snap)
	}
	_, metrics := gw.get(t, gw.health, "/metrics")
	gw.healthy(t)
	// Stop the process so its whole log is written.
	_ = gw.cmd.Process.Signal(os.Interrupt)
	select {
	case <-gw.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("gatewaypod did not stop on SIGINT")
	}
	logs := gw.logs.String()
	if !strings.Contains(logs, "/public/x") {
		t.Fatalf("the access log shows no request; log:\n%s", logs)
	}
	for what, text := range map[string]string{"/debug/snapshot": snap, "/metrics": metrics, "the log": logs} {
		for _, m := range append(markers, token, strings.TrimPrefix(token, "Bearer "), cookie) {
			if strings.Contains(text, m) {
				t.Errorf("%s shows secret material %q", what, m)
			}
		}
	}
}
