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

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// echoUpgradeBackend answers "Upgrade: websocket" with 101 and then echoes
// bytes on the raw connection (the proxy only tunnels; framing is the
// endpoints' business, so a byte echo is a faithful WebSocket stand-in).
func echoUpgradeBackend(t *testing.T) string {
	srv := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Path: %s\r\n\r\n", r.URL.Path)
		brw.Flush()
		io.Copy(c, brw)
	})
	return addr(srv)
}

// dialUpgrade opens an upgraded connection through the proxy.
func dialUpgrade(t *testing.T, proxyAddr, path string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", path)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

func echoOnce(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := br.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("echo of %q = %q, %v", msg, got, err)
	}
}

// TestUpgradeSurvivesSwaps: an upgraded connection opened before 100
// snapshot swaps (including ones that remove its route) still echoes after
// them, while new upgrades follow the new snapshot.
func TestUpgradeSurvivesSwaps(t *testing.T) {
	be := echoUpgradeBackend(t)
	p, front := newProxy(t, nil)
	withRoute := oneRoute("ws", be)
	without := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "other.test", Routes: withRoute.Hosts[0].Routes}}}
	p.Swap(compile(t, withRoute))

	c, br, resp := dialUpgrade(t, addr(front), "/chat/./room")
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Path") != "/chat/room" {
		t.Fatalf("upgrade: %d, X-Path %q", resp.StatusCode, resp.Header.Get("X-Path"))
	}
	echoOnce(t, c, br, "before")
	for i := range 100 {
		if i%2 == 0 {
			p.Swap(compile(t, without))
		} else {
			p.Swap(compile(t, withRoute))
		}
		if i%25 == 0 {
			echoOnce(t, c, br, fmt.Sprint("during-", i))
		}
	}
	// The last swap (i = 99) restored the route; swap once more to remove it.
	p.Swap(compile(t, without))
	echoOnce(t, c, br, "after 101 swaps")

	// New upgrades see the current snapshot: no route now.
	_, _, resp2 := dialUpgrade(t, addr(front), "/chat")
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("new upgrade without a route: %d, want 404", resp2.StatusCode)
	}
	if got := p.metrics.requests[0]; got == nil {
		t.Error("1xx counter missing")
	}
}

func TestUpgradeDialFailure(t *testing.T) {
	p, front := newProxy(t, nil)
	p.Swap(compile(t, oneRoute("ws", closedAddr(t))))
	_, _, resp := dialUpgrade(t, addr(front), "/")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Server") != ServerHeader {
		t.Errorf("upgrade to a dead endpoint: %d (Server %q), want 502 from the proxy", resp.StatusCode, resp.Header.Get("Server"))
	}
}
