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
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// h2cProtocols are HTTP/1.1 plus HTTP/2 without TLS (prior knowledge).
func h2cProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// grpcEcho is a gRPC-shaped handler: it answers each length-prefixed
// message as soon as it arrives with "echo:<message>", then ends with the
// grpc-status and grpc-message trailers. It refuses anything that is not
// HTTP/2 with Content-Type application/grpc and TE: trailers.
func grpcEcho(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" {
		http.Error(w, fmt.Sprintf("not gRPC: %s %q te=%q", r.Proto, r.Header.Get("Content-Type"), r.Header.Get("Te")), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	n := 0
	for {
		msg, err := readGRPCMessage(r.Body)
		if err != nil {
			break
		}
		n++
		_, _ = w.Write(grpcFrame("echo:" + msg))
		_ = rc.Flush()
	}
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	w.Header().Set(http.TrailerPrefix+"Grpc-Message", fmt.Sprintf("echoed %d", n))
}

func grpcFrame(msg string) []byte {
	b := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:5], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

func readGRPCMessage(r io.Reader) (string, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return "", err
	}
	return string(msg), nil
}

// h2cFront serves p with HTTP/1.1 and h2c on 127.0.0.1.
func h2cFront(t testing.TB, p *Proxy) *httptest.Server {
	t.Helper()
	front := httptest.NewUnstartedServer(p)
	front.Config.Protocols = h2cProtocols()
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.Start()
	t.Cleanup(front.Close)
	return front
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge).
func h2cClient(t *testing.T) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// grpcExchange runs a bidirectional gRPC-shaped stream through url: each
// message is sent only after the echo of the previous one came back, which
// proves that neither direction is buffered. It returns the response and
// the echoes.
func grpcExchange(t *testing.T, c *http.Client, url string, msgs ...string) (*http.Response, []string) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resc := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			errc <- err
			return
		}
		resc <- resp
	}()
	var resp *http.Response
	select {
	case resp = <-resc:
	case err := <-errc:
		t.Fatalf("request: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no response header within 10s: the header was not flushed")
	}
	var got []string
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "" {
		pw.Close()
		return resp, nil
	}
	for _, m := range msgs {
		if _, err := pw.Write(grpcFrame(m)); err != nil {
			t.Fatalf("send %q: %v", m, err)
		}
		echo, err := readGRPCMessage(resp.Body)
		if err != nil {
			t.Fatalf("echo of %q: %v", m, err)
		}
		got = append(got, echo)
	}
	pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the stream: %q, %v", rest, err)
	}
	resp.Body.Close()
	return resp, got
}

func TestGRPCUpstream(t *testing.T) {
	ca := newTestCA(t, "grpc-ca")
	h2cBackend := httptest.NewUnstartedServer(http.HandlerFunc(grpcEcho))
	h2cBackend.Config.Protocols = h2cProtocols()
	h2cBackend.Start()
	t.Cleanup(h2cBackend.Close)
	tlsBackend := newTLSBackend(t, ca, false, nil, true, http.HandlerFunc(grpcEcho), "grpc.test")
	data, u := upstreamSecret("ns/grpc-ca", ca.pem, nil, nil)
	u.Verify, u.ServerName = true, "grpc.test"
	wrongCA := newTestCA(t, "wrong")
	_, uWrong := upstreamSecret("ns/grpc-ca", wrongCA.pem, nil, nil)
	uWrong.Verify, uWrong.ServerName = true, "grpc.test"

	tests := map[string]struct {
		protocol   string
		settings   *snapshot.UpstreamTLS
		data       map[string][]byte
		endpoints  []string
		wantStatus string // grpc-status sent by the proxy itself; "" when the stream works
	}{
		"GRPC over h2c":              {protocol: snapshot.ProtocolGRPC, endpoints: []string{addr(h2cBackend)}},
		"GRPCS with verification":    {protocol: snapshot.ProtocolGRPCS, settings: &u, data: data, endpoints: []string{addr(tlsBackend.Server)}},
		"GRPCS without verification": {protocol: snapshot.ProtocolGRPCS, endpoints: []string{addr(tlsBackend.Server)}},
		"GRPCS wrong CA":             {protocol: snapshot.ProtocolGRPCS, settings: &uWrong, data: data, endpoints: []string{addr(tlsBackend.Server)}, wantStatus: "14"},
		"GRPC no endpoint answers":   {protocol: snapshot.ProtocolGRPC, endpoints: []string{closedAddr(t)}, wantStatus: "14"},
		"GRPC no endpoints at all":   {protocol: snapshot.ProtocolGRPC, wantStatus: "14"},
		"GRPCS material missing":     {protocol: snapshot.ProtocolGRPCS, settings: &u, data: map[string][]byte{}, endpoints: []string{addr(tlsBackend.Server)}, wantStatus: "14"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			if tc.data != nil {
				p.SetTLSData(tc.data)
			}
			p.Swap(compile(t, upstreamRoute("ns/grpc:50051", tc.protocol, tc.settings, tc.endpoints...)))
			front := h2cFront(t, p)
			resp, echoes := grpcExchange(t, h2cClient(t), front.URL+"/echo.Echo/Stream", "one", "two", "three")
			if resp.ProtoMajor != 2 {
				t.Errorf("client got %s, want HTTP/2 (h2c)", resp.Proto)
			}
			if tc.wantStatus != "" {
				if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != tc.wantStatus || resp.Header.Get("Content-Type") != "application/grpc" {
					t.Fatalf("got %d grpc-status %q content-type %q, want a Trailers-Only grpc-status %s",
						resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get("Content-Type"), tc.wantStatus)
				}
				return
			}
			if strings.Join(echoes, ",") != "echo:one,echo:two,echo:three" {
				t.Fatalf("echoes %q", echoes)
			}
			if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "echoed 3" {
				t.Errorf("trailers %v, want grpc-status 0 and grpc-message", resp.Trailer)
			}
		})
	}
}

// A gRPC client reaches a gRPC upstream over HTTP/2 with TLS on the
// gateway (ALPN), too; a plain HTTP/1.1 client of a GRPC route still gets
// its answer (the upstream side is HTTP/2 either way).
func TestGRPCUpstreamFromTLSAndHTTP1Clients(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s", r.Proto)
	}))
	backend.Config.Protocols = h2cProtocols()
	backend.Start()
	t.Cleanup(backend.Close)
	p, front := newProxy(t, nil)
	p.Swap(compile(t, upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, addr(backend))))
	if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 || body != "upstream saw HTTP/2.0" {
		t.Fatalf("HTTP/1.1 client: %d %q", resp.StatusCode, body)
	}

	ca := newTestCA(t, "front")
	crt, key := ca.issue(t, "front", false, false, "front.test")
	cert, _ := tls.X509KeyPair(crt, key)
	tlsFrontSrv := httptest.NewUnstartedServer(p)
	tlsFrontSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsFrontSrv.EnableHTTP2 = true
	tlsFrontSrv.StartTLS()
	t.Cleanup(tlsFrontSrv.Close)
	c := tlsFrontSrv.Client()
	c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
	resp, body := get(t, c, tlsFrontSrv.URL+"/", nil)
	if resp.ProtoMajor != 2 || body != "upstream saw HTTP/2.0" {
		t.Fatalf("TLS client: %s %q", resp.Proto, body)
	}
}

// A real gRPC client and server (grpc-go's health service) through the
// proxy: unary Check, a server stream (Watch), and UNAVAILABLE when the
// upstream is gone.
func TestGRPCHealthThroughProxy(t *testing.T) {
	hs, backend := grpcHealthServer(t)
	hs.SetServingStatus("echo", healthpb.HealthCheckResponse_SERVING)

	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.Swap(compile(t, upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, backend)))
	client := healthClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	res, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "echo"})
	if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v", res, err)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service = %v, want NotFound relayed from the trailers", err)
	}

	watch, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch message = %v, %v", m, err)
	}
	hs.SetServingStatus("echo", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := watch.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("streamed Watch message = %v, %v", m, err)
	}

	p.Swap(compile(t, upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, closedAddr(t))))
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "echo"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Check with the upstream gone = %v, want Unavailable", err)
	}
}

// connCounter counts the connections a test server accepts.
func connCounter(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// The HTTP/2 transport of a route is pooled: requests share one upstream
// connection, a swap to a snapshot with the same upstream settings keeps
// it, and different settings build a new transport.
func TestHTTP2TransportPooledAcrossSwaps(t *testing.T) {
	ca := newTestCA(t, "ca")
	crt, key := ca.issue(t, "backend", false, false, "grpc.test")
	cert, _ := tls.X509KeyPair(crt, key)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	conns := connCounter(backend)
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	backend.EnableHTTP2 = true
	backend.StartTLS()
	t.Cleanup(backend.Close)
	data, u := upstreamSecret("ns/ca", ca.pem, nil, nil)
	u.Verify, u.ServerName = true, "grpc.test"

	p, front := newProxy(t, nil)
	p.SetTLSData(data)
	snap := func(version string, settings snapshot.UpstreamTLS) *snapshot.Snapshot {
		s := upstreamRoute("ns/grpc:443", snapshot.ProtocolGRPCS, &settings, addr(backend))
		s.Version = version
		return s
	}
	getOK := func(when string) {
		t.Helper()
		if resp, body := get(t, front.Client(), front.URL+"/", nil); resp.StatusCode != 200 || body != "HTTP/2.0" {
			t.Fatalf("%s: %d %q", when, resp.StatusCode, body)
		}
	}
	p.Swap(compile(t, snap("v1", u)))
	for range 3 {
		getOK("first snapshot")
	}
	p.Swap(compile(t, snap("v2", u)))
	getOK("same settings, new snapshot")
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1 shared across requests and the swap", n)
	}
	u2 := u
	u2.SNI = true
	p.Swap(compile(t, snap("v3", u2)))
	getOK("new settings")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections after a settings change, want 2 (a new transport)", n)
	}
}

// Passive health works for HTTP/2 routes: a dead endpoint is ejected after
// its failures and the live one takes every request.
func TestGRPCPassiveHealth(t *testing.T) {
	live := httptest.NewUnstartedServer(http.HandlerFunc(grpcEcho))
	live.Config.Protocols = h2cProtocols()
	live.Start()
	t.Cleanup(live.Close)
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.Swap(compile(t, upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, closedAddr(t), addr(live))))
	front := h2cFront(t, p)
	c := h2cClient(t)
	var statuses []string
	for range 20 {
		resp, _ := grpcExchange(t, c, front.URL+"/echo.Echo/Stream", "x")
		s := resp.Header.Get("Grpc-Status")
		if s == "" {
			s = resp.Trailer.Get("Grpc-Status")
		}
		statuses = append(statuses, s)
	}
	failed := strings.Count(strings.Join(statuses, ","), "14")
	if failed == 0 || failed > 5 {
		t.Fatalf("statuses %v: want the dead endpoint to fail (14) at most 5 times, then be ejected", statuses)
	}
	if last := statuses[len(statuses)-10:]; strings.Join(last, "") != strings.Repeat("0", 10) {
		t.Fatalf("statuses %v: the last 10 must all succeed once the dead endpoint is ejected", statuses)
	}
}
