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
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// slowCheck probes once a second with a generous timeout, so a TLS
// handshake on a busy machine never fails a healthy endpoint.
func slowCheck() *snapshot.HealthCheck {
	return &snapshot.HealthCheck{IntervalMs: 1000, TimeoutMs: 900, HealthyThreshold: 1, UnhealthyThreshold: 1}
}

// TestActiveHealthCheckOverUpstreamTLS: on an HTTPS route whose upstreams
// require a client certificate, the http check runs over TLS with the
// route's settings (CA verification, the client certificate from the
// instance Secret) and sends health-check-host as Host and SNI; the
// endpoint failing it gets no traffic, the one passing gets it all.
func TestActiveHealthCheckOverUpstreamTLS(t *testing.T) {
	ca, clientCA := newTestCA(t, "upstream-ca"), newTestCA(t, "client-ca")
	clientCrt, clientKey := clientCA.issue(t, "gateway-client", true, false)
	var probes [2]atomic.Int32 // passing-shaped probes seen by a and b
	backend := func(i int, bad bool) string {
		b := newTLSBackend(t, ca, false, clientCA, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				if r.Host != "health.test" || r.TLS.ServerName != "health.test" {
					w.WriteHeader(http.StatusMisdirectedRequest)
					return
				}
				probes[i].Add(1)
				if bad {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			fmt.Fprint(w, []string{"a", "b"}[i])
		}), "web.ns.svc", "health.test")
		return addr(b.Server)
	}
	a, b := backend(0, false), backend(1, true)
	data, settings := upstreamSecret("ns/up", ca.pem, clientCrt, clientKey)
	settings.Verify = true // as web.ns.svc, the Service name

	p, front := newProxy(t, nil)
	p.SetTLSData(data)
	hc := slowCheck()
	hc.Path, hc.Host = "/healthz", "health.test"
	serveChecked(t, p, upstreamRoute("ns/web:443", snapshot.ProtocolHTTPS, &settings, a, b), hc)
	waitSplit(t, p, a, b, func() bool { return probes[0].Load() > 0 })
	got := map[string]int{}
	for range 10 {
		resp, body := get(t, front.Client(), front.URL+"/", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
		got[body]++
	}
	if got["a"] != 10 {
		t.Errorf("b fails its TLS check: %v, want all 10 on a", got)
	}
}

// TestActiveGRPCHealthCheck: on a GRPC route, the grpc check calls
// grpc.health.v1.Health/Check over h2c; the endpoint answering NOT_SERVING
// gets no traffic.
func TestActiveGRPCHealthCheck(t *testing.T) {
	var calls [2]atomic.Int32 // health calls of the checker seen by a and b
	server := func(i int, st healthpb.HealthCheckResponse_ServingStatus) string {
		hs, addr := grpcHealthServer(t, grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if r, ok := req.(*healthpb.HealthCheckRequest); ok && r.Service == "orders" {
				calls[i].Add(1)
			}
			return h(ctx, req)
		}))
		hs.SetServingStatus("orders", st)
		return addr
	}
	a := server(0, healthpb.HealthCheckResponse_SERVING)
	b := server(1, healthpb.HealthCheckResponse_NOT_SERVING)

	p, _ := newProxy(t, nil)
	hc := slowCheck()
	hc.GRPC, hc.GRPCService = true, "orders"
	serveChecked(t, p, upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, a, b), hc)
	waitSplit(t, p, a, b, func() bool { return calls[0].Load() > 0 })
	before := calls[1].Load()

	client := healthClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 10 {
		res, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("call %d through the proxy = %v, %v; want SERVING (only a gets traffic)", i, res, err)
		}
	}
	if n := calls[1].Load() - before; n > 1 { // at most one probe of b's checker in the meantime
		t.Errorf("b saw %d calls while out of rotation", n)
	}
}

// serveChecked serves snap, whose first route's backend gets check hc.
func serveChecked(t *testing.T, p *Proxy, snap *snapshot.Snapshot, hc *snapshot.HealthCheck) {
	t.Helper()
	snap.Hosts[0].Routes[0].Backend.HealthCheck = hc
	if _, err := snapshot.Decode(snapshot.Seal(snap)); err != nil {
		t.Fatal(err)
	}
	p.Swap(compile(t, snap))
}

// waitSplit waits until endpoint bad fails its check and passed says good
// passed one, then requires good to be in rotation.
func waitSplit(t *testing.T, p *Proxy, good, bad string, passed func() bool) {
	t.Helper()
	waitFor(t, bad+" to fail its check and "+good+" to pass one", func() bool {
		ep := p.registry.Lookup(bad)
		// good's state may be registered a moment after its first probe.
		return ep != nil && ep.Unhealthy() && passed() && p.registry.Lookup(good) != nil
	})
	if p.registry.Lookup(good).Unhealthy() {
		t.Fatalf("%s, whose check passes, is out of rotation", good)
	}
}

// grpcHealthServer starts a grpc-go server with the standard health
// service on 127.0.0.1.
func grpcHealthServer(t *testing.T, opts ...grpc.ServerOption) (*grpchealth.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return hs, ln.Addr().String()
}

// healthClient is a grpc-go Health client through an h2c front of p.
func healthClient(t *testing.T, p *Proxy) healthpb.HealthClient {
	t.Helper()
	front := h2cFront(t, p)
	conn, err := grpc.NewClient(strings.TrimPrefix(front.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}
