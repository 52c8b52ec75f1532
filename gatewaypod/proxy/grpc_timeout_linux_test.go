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
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// hangingAddr returns a 127.0.0.1 address where a connect hangs: a
// listener with a backlog of 0 that never accepts, its queue filled, so
// Linux drops further SYNs.
func hangingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			if isTimeout(err) {
				return addr
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("connects to %s never hang", addr)
	return ""
}

// The route's connect timeout bounds the dial of the HTTP/2 upstream
// connection: DEADLINE_EXCEEDED after 300 ms, not the proxy's 5 s default,
// and a failure of the endpoint.
func TestGRPCConnectTimeout(t *testing.T) {
	addr := hangingAddr(t)
	h := newStreamHarness(t, addr, routeTimeouts{connectMs: 300, readMs: 5000})
	// Timed from before the call opens: the dial starts then, not when
	// the first receive begins.
	start := time.Now()
	cs, _ := h.open(t, "/t.T/Any")
	send(t, cs, "hello")
	st, _ := recvErr(cs)
	if st.Code() != codes.DeadlineExceeded {
		t.Fatalf("status %v, want DeadlineExceeded", st)
	}
	within(t, "DeadlineExceeded", time.Since(start), 300*time.Millisecond)
	h.settle(t)
	if h.failures() != 1 {
		t.Errorf("passive-health failures %d, want 1", h.failures())
	}
	if want := fmt.Sprintf(`"status":%d`, http.StatusGatewayTimeout); !strings.Contains(h.access.String(), want) {
		t.Errorf("access log %q, want %s", h.access.String(), want)
	}
}
