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

// Package hostile attacks a running gatewaypod: the real binary, started
// with a snapshot file on 127.0.0.1, in front of real backends on
// 127.0.0.1. Each attack asserts a bounded answer, that no request reaches
// a backend it must not, and that the process is still healthy afterwards.
// The cases and their numbers are listed in docs/security.md.
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/internal/testcerts"
)

// gatewaypodBin is the binary under attack: GATEWAYPOD_BIN (make test sets
// it after make build), else built once into a temporary directory.
var gatewaypodBin string

func TestMain(m *testing.M) {
	code, err := func() (int, error) {
		if p := os.Getenv("GATEWAYPOD_BIN"); p != "" {
			if !filepath.IsAbs(p) { // relative to the repository root, like make's paths
				p = filepath.Join("..", "..", p)
			}
			gatewaypodBin = p
		} else {
			dir, err := os.MkdirTemp("", "portico-hostile-")
			if err != nil {
				return 1, err
			}
			defer os.RemoveAll(dir)
			gatewaypodBin = filepath.Join(dir, "gatewaypod")
			cmd := exec.Command("go", "build", "-o", gatewaypodBin, "./cmd/gatewaypod")
			cmd.Dir = filepath.Join("..", "..")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return 1, fmt.Errorf("GATEWAYPOD_BIN is unset and building ./cmd/gatewaypod failed: %w", err)
			}
		}
		if _, err := os.Stat(gatewaypodBin); err != nil {
			return 1, fmt.Errorf("GATEWAYPOD_BIN: %w (run make build)", err)
		}
		return m.Run(), nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
	}
	os.Exit(code)
}

// backend is a real HTTP server on 127.0.0.1 that records every request
// it receives.
type backend struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	seen []string // request URIs, in arrival order
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r.RequestURI)
		b.mu.Unlock()
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return b.Listener.Addr().String() }

// requests returns the URIs received so far.
func (b *backend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// gateway is one running gatewaypod process.
type gateway struct {
	http, health, https string
	cmd                 *exec.Cmd
	logs                *lockedBuffer
	exited              chan struct{} // closed when the process has exited
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsFiles writes a self-signed certificate for names into dir under the
// keys the instance Secret uses for secret, and returns its pin.
func tlsFiles(t *testing.T, dir, secret string, names ...string) snapshot.Certificate {
	t.Helper()
	c := testcerts.New(t, nil, testcerts.Options{DNSNames: names})
	crt, key := c.CertPEM, c.KeyPEM
	ck, kk := snapshot.CertificateDataKeys(secret)
	for name, b := range map[string][]byte{ck: crt, kk: key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return snapshot.Certificate{Secret: secret, Hash: snapshot.CertificateHash(crt, key), Hosts: names}
}

// startGateway runs gatewaypod with s as its snapshot file (file-only mode:
// no API server), its listeners on 127.0.0.1 ports it picks, and flags;
// it returns once /readyz answers. The process is stopped at cleanup, and
// its log printed when the test failed.
func startGateway(t *testing.T, name string, s *snapshot.Snapshot, flags podflags.Flags) *gateway {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "snapshot.json")
	if err := os.WriteFile(file, snapshot.Seal(s), 0o644); err != nil {
		t.Fatal(err)
	}
	flags.HTTPAddress, flags.HealthAddress, flags.SnapshotFile, flags.Instance = "127.0.0.1:0", "127.0.0.1:0", file, name
	if flags.HTTP1Server == "" {
		// make test runs the suite once per HTTP/1.1 server of the plain
		// listener: the default (portico) and PORTICO_HTTP1_SERVER=stdlib.
		flags.HTTP1Server = os.Getenv("PORTICO_HTTP1_SERVER")
	}
	if flags.HTTPSAddress != "" {
		flags.HTTPSAddress = "127.0.0.1:0"
	}
	cmd := exec.Command(gatewaypodBin, flags.Args()...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no KUBECONFIG, no POD_NAME: file-only
	g := &gateway{cmd: cmd, logs: &lockedBuffer{}}
	stderr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = g.logs, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	g.exited = exited
	go func() { _ = cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gatewaypod %s log:\n%s", name, g.logs)
		}
	})
	// Learn the addresses from the start-up lines, then keep copying the log.
	addrs := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		done := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = g.logs.Write(append(line, '\n'))
			var m map[string]any
			if done || json.Unmarshal(line, &m) != nil {
				continue
			}
			switch m["msg"] {
			case "Serving TLS":
				g.https, _ = m["httpsAddress"].(string)
			case "Serving":
				g.http, _ = m["httpAddress"].(string)
				g.health, _ = m["healthAddress"].(string)
				done = true
				close(addrs)
			}
		}
		if !done {
			close(addrs)
		}
	}()
	select {
	case <-addrs:
	case <-time.After(20 * time.Second):
		t.Fatalf("gatewaypod %s did not start:\n%s", name, g.logs)
	}
	if g.http == "" {
		t.Fatalf("gatewaypod %s exited at start:\n%s", name, g.logs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := g.get(t, g.health, "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatewaypod %s never ready:\n%s", name, g.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g
}

// get does one plain GET on addr and returns the status and body (0 on a
// transport error).
func (g *gateway) get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	return do(t, addr, "", path, nil)
}

// do sends a GET for host and path to addr with the extra headers.
func do(t *testing.T, addr, host, path string, hdr map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// healthy asserts the process runs and answers /healthz.
func (g *gateway) healthy(t *testing.T) {
	t.Helper()
	select {
	case <-g.exited:
		t.Fatalf("gatewaypod exited: %v", g.cmd.ProcessState)
	default:
	}
	if code, body := g.get(t, g.health, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q after the attack", code, body)
	}
}

// goroutines reads go_goroutines from the health listener's /metrics.
func (g *gateway) goroutines(t *testing.T) int {
	t.Helper()
	code, body := g.get(t, g.health, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}
