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
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// envRunMain makes the test binary run gatewaypod's main instead of the
// tests, so a test can start the real process and signal it.
const envRunMain = "PORTICO_TEST_RUN_GATEWAYPOD"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSIGTERMDrainsInFlightRequests runs the gatewaypod process, sends it
// SIGTERM while slow requests are in flight, and checks the drain: /readyz
// fails first (while those requests are still running), no new connection
// is accepted, every in-flight request completes with its answer, and the
// process exits 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	const inflight = 5
	const slow = 1500 * time.Millisecond
	var arrived, finished atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		time.Sleep(slow)
		_, _ = io.WriteString(w, "done "+r.URL.Path)
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
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, podflags.Flags{HTTPAddress: httpAddr, HealthAddress: healthAddr, SnapshotFile: file, Instance: "gw"}.Args()...)
	cmd.Env = append(os.Environ(), envRunMain+"=1", podflags.EnvPodName+"=")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	ready := func() int {
		code, _, err := httpGet("http://"+healthAddr+"/readyz", "")
		if err != nil {
			return 0
		}
		return code
	}
	for deadline := time.Now().Add(10 * time.Second); ready() != http.StatusOK; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 10s; logs:\n%s", logs)
		}
	}

	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, inflight)
	for i := range inflight {
		go func() {
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/slow/"+string(rune('a'+i)), nil)
			req.Host = "app.test"
			resp, err := c.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			finished.Add(1)
			answers <- answer{resp.StatusCode, string(b), err}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); arrived.Load() < inflight; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests reached the backend", arrived.Load(), inflight)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(slow / 2); ready() != http.StatusServiceUnavailable; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s after SIGTERM; logs:\n%s", ready(), slow/2, logs)
		}
	}
	if n := finished.Load(); n != 0 {
		t.Fatalf("%d requests finished before /readyz failed: readiness must go first", n)
	}
	if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted while draining")
	}

	for range inflight {
		select {
		case a := <-answers:
			if a.err != nil || a.code != http.StatusOK || !strings.HasPrefix(a.body, "done /slow/") {
				t.Errorf("in-flight request during the drain: %d %q, %v", a.code, a.body, a.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an in-flight request did not complete")
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after the drain; logs:\n%s", logs)
	}
	for _, want := range []string{`"msg":"Shutting down, draining connections"`, `"msg":"Stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}
