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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// rawCodec carries gRPC messages as plain strings (*string), so tests need
// no generated code; it is named "proto" to keep Content-Type
// application/grpc.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return []byte(*v.(*string)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*string) = string(data); return nil }
func (rawCodec) Name() string                       { return "proto" }

// grpcHandlers serve the methods of a test gRPC server by full name.
type grpcHandlers map[string]func(ss grpc.ServerStream) error

// grpcBackend serves handlers with grpc-go on 127.0.0.1 and returns its
// address.
func grpcBackend(t *testing.T, handlers grpcHandlers) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		m, _ := grpc.MethodFromServerStream(ss)
		h, ok := handlers[m]
		if !ok {
			return status.Errorf(codes.Unimplemented, "no method %s", m)
		}
		return h(ss)
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// streamHarness is a proxy with one GRPC route to backend, a grpc-go client
// of it, and what the proxy reports: logs at Warn and above, access log,
// passive health (one failure ejects), metrics.
type streamHarness struct {
	p       *Proxy
	conn    *grpc.ClientConn
	backend string
	logs    *lockedBuffer
	access  *lockedBuffer
	front   *httptest.Server
}

// routeTimeouts are the route's timeouts (0: the proxy's) and the proxy's
// default read timeout (0: DefaultReadTimeout).
type routeTimeouts struct{ connectMs, readMs, sendMs, proxyReadMs int }

func newStreamHarness(t *testing.T, backend string, to routeTimeouts) *streamHarness {
	t.Helper()
	h := &streamHarness{backend: backend, logs: &lockedBuffer{}, access: &lockedBuffer{}}
	p, err := New(Options{
		Registerer:    prometheus.NewRegistry(),
		ReadTimeout:   time.Duration(to.proxyReadMs) * time.Millisecond,
		PassiveHealth: &balancer.PassiveHealth{MaxFailures: 1, BaseEjection: time.Hour},
		Logger:        slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		AccessLog:     AccessLogOptions{SampleRate: 1, Out: h.access, Fields: []string{"path", "status", "endpoint"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s := upstreamRoute("ns/grpc:50051", snapshot.ProtocolGRPC, nil, backend)
	u := s.Hosts[0].Routes[0].Upstream
	u.ConnectTimeoutMs, u.ReadTimeoutMs, u.SendTimeoutMs = to.connectMs, to.readMs, to.sendMs
	p.Swap(compile(t, s))
	h.p, h.front = p, h2cFront(t, p)
	h.conn, err = grpc.NewClient(strings.TrimPrefix(h.front.URL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	return h
}

// open starts a call of method (any streaming shape) that ends within 10 s.
func (h *streamHarness) open(t *testing.T, method string) (grpc.ClientStream, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	cs, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cancel
}

// settle waits until the proxy is done with the stream: health reported,
// metrics and access log written.
func (h *streamHarness) settle(t *testing.T) {
	t.Helper()
	waitFor(t, "the proxy to finish the stream", func() bool {
		ep := h.p.registry.Lookup(h.backend)
		return ep != nil && ep.InFlight() == 0 && strings.Contains(h.access.String(), "\n")
	})
}

// failures is how many times passive health ejected the endpoint (each
// failure ejects it).
func (h *streamHarness) failures() uint64 {
	n, _ := h.p.registry.Lookup(h.backend).Ejections()
	return n
}

func (h *streamHarness) streamErrors(reason string) float64 {
	return testutil.ToFloat64(h.p.metrics.streamErrs.WithLabelValues(reason))
}

// check asserts the passive-health failures, the MetricStreamErrors reason
// counted (if any), the access log status and the Warn lines about the
// endpoint.
func (h *streamHarness) check(t *testing.T, wantFailures uint64, reason string, wantStatus int, wantWarn string) {
	t.Helper()
	h.settle(t)
	if got := h.failures(); got != wantFailures {
		t.Errorf("passive-health failures %d, want %d", got, wantFailures)
	}
	for _, r := range streamErrorReasons {
		want := 0.0
		if r == reason {
			want = 1
		}
		if got := h.streamErrors(r); got != want {
			t.Errorf("%s{reason=%q} = %v, want %v", MetricStreamErrors, r, got, want)
		}
	}
	if want := fmt.Sprintf(`"status":%d,"endpoint":%q`, wantStatus, h.backend); !strings.Contains(h.access.String(), want) {
		t.Errorf("access log %q, want %s", h.access.String(), want)
	}
	logs := h.logs.String()
	if wantWarn == "" {
		if logs != "" {
			t.Errorf("logs %q, want none at Warn", logs)
		}
		return
	}
	if n := strings.Count(logs, "\n"); n != 1 || !strings.Contains(logs, wantWarn) ||
		!strings.Contains(logs, "backend=ns/grpc:50051") || !strings.Contains(logs, "endpoint="+h.backend) {
		t.Errorf("logs %q, want one Warn line %q with backend and endpoint", logs, wantWarn)
	}
}

func send(t *testing.T, cs grpc.ClientStream, msg string) {
	t.Helper()
	if err := cs.SendMsg(&msg); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
}

func recv(t *testing.T, cs grpc.ClientStream, want string) {
	t.Helper()
	var got string
	if err := cs.RecvMsg(&got); err != nil || got != want {
		t.Fatalf("recv = %q, %v; want %q", got, err, want)
	}
}

// recvErr waits for the call to end and returns its status and how long
// it took.
func recvErr(cs grpc.ClientStream) (*status.Status, time.Duration) {
	start := time.Now()
	var m string
	for {
		if err := cs.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return status.New(codes.OK, ""), time.Since(start)
			}
			return status.Convert(err), time.Since(start)
		}
	}
}

// within fails unless d is at least least and at most least plus 2 s.
func within(t *testing.T, what string, d, least time.Duration) {
	t.Helper()
	if d < least || d > least+2*time.Second {
		t.Errorf("%s after %v, want %v (+ at most 2 s)", what, d, least)
	}
}

// waitClosed fails unless ch is closed within 5 s.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5 s", what)
	}
}

// silentUntilCancelled is a handler that reads one message, sends the
// given ones, then waits for its call to be cancelled and closes done.
func silentUntilCancelled(done chan struct{}, msgs ...string) func(grpc.ServerStream) error {
	return func(ss grpc.ServerStream) error {
		var m string
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := ss.SendMsg(&m); err != nil {
				return err
			}
		}
		<-ss.Context().Done()
		close(done)
		return ss.Context().Err()
	}
}

// The route's read timeout bounds the wait for the response header and
// the silence of a server stream after its first message: the client gets
// DEADLINE_EXCEEDED (Trailers-Only, or in the trailers after the message it
// got), the upstream call is cancelled, and the endpoint is charged a
// failure.
func TestGRPCReadTimeout(t *testing.T) {
	tests := map[string]struct {
		sent     []string // by the server before it goes silent
		reason   string
		wantWarn string
	}{
		"before the header": {reason: StreamErrorHeaderTimeout, wantWarn: "Upstream request failed"},
		"mid-stream":        {sent: []string{"first"}, reason: StreamErrorReadTimeout, wantWarn: "Upstream stream timed out"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cancelled := make(chan struct{})
			backend := grpcBackend(t, grpcHandlers{"/t.T/Stall": silentUntilCancelled(cancelled, tc.sent...)})
			h := newStreamHarness(t, backend, routeTimeouts{readMs: 300})
			cs, _ := h.open(t, "/t.T/Stall")
			send(t, cs, "hello")
			for _, m := range tc.sent {
				recv(t, cs, m)
			}
			st, took := recvErr(cs)
			if st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "proxy-read-timeout") {
				t.Fatalf("status %v, want DeadlineExceeded naming proxy-read-timeout", st)
			}
			within(t, "DeadlineExceeded", took, 300*time.Millisecond)
			waitClosed(t, "upstream call cancelled", cancelled)
			h.check(t, 1, tc.reason, http.StatusGatewayTimeout, tc.wantWarn)
		})
	}
}

// The read timeout bounds the silence between messages, not the call: a
// server stream sending every 300 ms for 3 s with a 1 s read timeout ends
// normally. The route's timeout wins over the proxy's shorter default (200
// ms), for the header (sent with the first message) too.
func TestGRPCLongStreamWithinReadTimeout(t *testing.T) {
	backend := grpcBackend(t, grpcHandlers{"/t.T/Ticks": func(ss grpc.ServerStream) error {
		var m string
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for i := range 10 {
			<-tick.C
			m := fmt.Sprintf("tick %d", i)
			if err := ss.SendMsg(&m); err != nil {
				return err
			}
		}
		return nil
	}})
	h := newStreamHarness(t, backend, routeTimeouts{readMs: 1000, sendMs: 1000, proxyReadMs: 200})
	start := time.Now()
	cs, _ := h.open(t, "/t.T/Ticks")
	send(t, cs, "go")
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		recv(t, cs, fmt.Sprintf("tick %d", i))
	}
	if st, _ := recvErr(cs); st.Code() != codes.OK {
		t.Fatalf("status %v, want OK", st)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("the stream took %v, want at least 3 s (longer than the read timeout)", took)
	}
	h.check(t, 0, "", http.StatusOK, "")
}

// The send timeout bounds the silence of the client's stream: a client
// that keeps sending is served for longer than the timeout, one that goes
// quiet gets its upstream call cancelled and DEADLINE_EXCEEDED, and the
// endpoint is not blamed.
func TestGRPCSendTimeout(t *testing.T) {
	cancelled := make(chan struct{})
	backend := grpcBackend(t, grpcHandlers{"/t.T/Echo": func(ss grpc.ServerStream) error {
		for {
			var m string
			if err := ss.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				<-ss.Context().Done()
				close(cancelled)
				return err
			}
			m = "echo:" + m
			if err := ss.SendMsg(&m); err != nil {
				return err
			}
		}
	}})
	h := newStreamHarness(t, backend, routeTimeouts{readMs: 5000, sendMs: 400})
	cs, _ := h.open(t, "/t.T/Echo")
	start := time.Now()
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for i := range 8 { // 1.2 s in all, three times the send timeout
		<-tick.C
		send(t, cs, fmt.Sprint(i))
		recv(t, cs, fmt.Sprint("echo:", i))
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the exchange took %v, want more than the send timeout", took)
	}
	st, took := recvErr(cs) // the client says nothing more
	if st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "proxy-send-timeout") {
		t.Fatalf("status %v, want DeadlineExceeded naming proxy-send-timeout", st)
	}
	within(t, "DeadlineExceeded", took, 400*time.Millisecond-150*time.Millisecond)
	waitClosed(t, "upstream call cancelled", cancelled)
	h.check(t, 0, StreamErrorSendTimeout, http.StatusRequestTimeout, "")
}

// A grpc-status in the trailers is the application's answer, relayed as
// is; even UNAVAILABLE does not count against the endpoint.
func TestGRPCApplicationStatusIsNotAFailure(t *testing.T) {
	backend := grpcBackend(t, grpcHandlers{"/t.T/Down": func(ss grpc.ServerStream) error {
		m := "partial"
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "down for maintenance")
	}})
	h := newStreamHarness(t, backend, routeTimeouts{readMs: 1000})
	cs, _ := h.open(t, "/t.T/Down")
	send(t, cs, "hello")
	recv(t, cs, "partial")
	if st, _ := recvErr(cs); st.Code() != codes.Unavailable || st.Message() != "down for maintenance" {
		t.Fatalf("status %v, want the server's Unavailable", st)
	}
	h.check(t, 0, "", http.StatusOK, "")
}

// A client cancelling its call mid-stream cancels the upstream call and is
// not an endpoint failure.
func TestGRPCClientCancelIsNotAFailure(t *testing.T) {
	cancelled := make(chan struct{})
	backend := grpcBackend(t, grpcHandlers{"/t.T/Stall": silentUntilCancelled(cancelled, "first")})
	h := newStreamHarness(t, backend, routeTimeouts{readMs: 5000})
	cs, cancel := h.open(t, "/t.T/Stall")
	send(t, cs, "hello")
	recv(t, cs, "first")
	cancel()
	if st, _ := recvErr(cs); st.Code() != codes.Canceled {
		t.Fatalf("status %v, want Canceled", st)
	}
	waitClosed(t, "upstream call cancelled", cancelled)
	h.check(t, 0, "", StatusClientClosedRequest, "")
}

// rawH2Upstream is an HTTP/2 (h2c) server written with the frame layer: it
// answers every stream with a gRPC header and one message "first", then
// breaks the stream with then.
func rawH2Upstream(t *testing.T, then func(fr *http2.Framer, c net.Conn, stream uint32)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serveRawH2(c, then)
		}
	}()
	return ln.Addr().String()
}

func serveRawH2(c net.Conn, then func(fr *http2.Framer, c net.Conn, stream uint32)) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true})
			_ = fr.WriteData(f.StreamID, false, grpcFrame("first"))
			then(fr, c, f.StreamID)
		}
	}
}

// An upstream that breaks a stream after its first message: the client
// sees an error, and the endpoint is charged a failure (with one Warn
// line) unless the upstream reset the stream with CANCEL or NO_ERROR.
func TestGRPCUpstreamBreaksMidStream(t *testing.T) {
	tests := map[string]struct {
		then        func(fr *http2.Framer, c net.Conn, stream uint32)
		wantFailure bool
	}{
		"RST_STREAM INTERNAL_ERROR": {then: func(fr *http2.Framer, _ net.Conn, id uint32) {
			_ = fr.WriteRSTStream(id, http2.ErrCodeInternal)
		}, wantFailure: true},
		"RST_STREAM REFUSED_STREAM": {then: func(fr *http2.Framer, _ net.Conn, id uint32) {
			_ = fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		}, wantFailure: true},
		"RST_STREAM CANCEL": {then: func(fr *http2.Framer, _ net.Conn, id uint32) {
			_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}},
		"RST_STREAM NO_ERROR": {then: func(fr *http2.Framer, _ net.Conn, id uint32) {
			_ = fr.WriteRSTStream(id, http2.ErrCodeNo)
		}},
		"GOAWAY PROTOCOL_ERROR": {then: func(fr *http2.Framer, c net.Conn, id uint32) {
			_ = fr.WriteGoAway(id, http2.ErrCodeProtocol, nil)
			_ = c.Close()
		}, wantFailure: true},
		"connection closed": {then: func(_ *http2.Framer, c net.Conn, _ uint32) {
			_ = c.Close()
		}, wantFailure: true},
		"connection reset": {then: func(_ *http2.Framer, c net.Conn, _ uint32) {
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
			_ = c.Close()
		}, wantFailure: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newStreamHarness(t, rawH2Upstream(t, tc.then), routeTimeouts{readMs: 5000})
			cs, _ := h.open(t, "/t.T/Stream")
			send(t, cs, "hello")
			recv(t, cs, "first")
			if st, _ := recvErr(cs); st.Code() == codes.OK {
				t.Fatalf("status %v, want an error: the stream broke", st)
			}
			if tc.wantFailure {
				h.check(t, 1, StreamErrorReset, http.StatusBadGateway, "Upstream stream broke")
			} else {
				h.check(t, 0, "", http.StatusBadGateway, "")
			}
		})
	}
}

// A client that does not speak gRPC gets 504 when the header is late, and
// a reset stream (not a clean end that would pass for the whole body) when
// the body goes silent.
func TestHTTP2ReadTimeoutPlainClient(t *testing.T) {
	tests := map[string]struct {
		handler    http.HandlerFunc
		wantStatus int
	}{
		"header late": {handler: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, wantStatus: http.StatusGatewayTimeout},
		"body silent": {handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "part")
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}, wantStatus: http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			backend := httptest.NewUnstartedServer(tc.handler)
			backend.Config.Protocols = h2cProtocols()
			backend.Start()
			t.Cleanup(backend.Close)
			h := newStreamHarness(t, addr(backend), routeTimeouts{readMs: 300})
			start := time.Now()
			resp, err := h2cClient(t).Get(h.front.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			within(t, "the answer", time.Since(start), 300*time.Millisecond)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK && (string(body) != "part" || err == nil) {
				t.Fatalf("body %q, %v; want the part sent, then an error (stream reset)", body, err)
			}
			h.settle(t)
			if h.failures() != 1 {
				t.Errorf("passive-health failures %d, want 1", h.failures())
			}
			if !strings.Contains(h.access.String(), `"status":504`) {
				t.Errorf("access log %q, want status 504", h.access.String())
			}
		})
	}
}
