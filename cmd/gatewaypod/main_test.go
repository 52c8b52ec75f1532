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
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// freeAddrs returns n distinct 127.0.0.1 addresses that were free a moment
// ago. All listeners stay open until every port is picked, so the kernel
// cannot hand the same port out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// syncBuffer is a log sink safe for the concurrent writes of run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func httpGet(url, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestRunFileOnly starts the whole process in file-only mode: it must become
// ready from the snapshot file, forward traffic, export metrics, and stop
// cleanly when its context ends.
func TestRunFileOnly(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from backend "+r.Host)
	}))
	defer backend.Close()

	snap := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "app.test", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix,
		Backend: snapshot.Backend{Name: "ns/app:80", Endpoints: []string{backend.Listener.Addr().String()}},
	}}}}}
	file := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	if err := os.WriteFile(file, snapshot.Seal(snap), 0o644); err != nil {
		t.Fatal(err)
	}

	a := freeAddrs(t, 2)
	httpAddr, healthAddr := a[0], a[1]
	args := podflags.Flags{HTTPAddress: httpAddr, HealthAddress: healthAddr, SnapshotFile: file, Instance: "gw"}.Args()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, err := httpGet("http://"+healthAddr+"/readyz", "")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 5s (last: %d, %v); logs:\n%s", code, err, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if code, body, err := httpGet("http://"+healthAddr+"/healthz", ""); err != nil || code != http.StatusOK {
		t.Errorf("/healthz = %d %q, %v", code, body, err)
	}
	if code, body, err := httpGet("http://"+httpAddr+"/x", "app.test"); err != nil || code != http.StatusOK || body != "hello from backend app.test" {
		t.Errorf("proxied GET = %d %q, %v", code, body, err)
	}
	if code, _, err := httpGet("http://"+httpAddr+"/x", "unknown.test"); err != nil || code != http.StatusNotFound {
		t.Errorf("unrouted GET = %d, %v; want 404", code, err)
	}
	_, metrics, err := httpGet("http://"+healthAddr+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`portico_gatewaypod_requests_total{code="2xx",gateway="gw"} 1`,
		`portico_gatewaypod_requests_total{code="4xx",gateway="gw"} 1`,
		`portico_gatewaypod_snapshot_swaps_total{gateway="gw"} 1`,
		`portico_gatewaypod_snapshot_rejected_total{gateway="gw",reason="Invalid"} 0`,
		`go_goroutines`,
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
	for _, want := range []string{`"msg":"Snapshot applied"`, `"version":"` + snap.Version + `"`, `"msg":"Stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestRunBadFlags(t *testing.T) {
	err := run(context.Background(), []string{"--snapshot-file=", "--snapshot-configmap="}, io.Discard)
	if _, ok := err.(usageError); !ok {
		t.Errorf("run with no snapshot source = %v, want a usageError", err)
	}
}
