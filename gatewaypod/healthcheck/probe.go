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

package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TLSSource yields the client TLS configuration of a probe: the one the
// route uses to reach the endpoint (CA verification, client certificate,
// server name), read at every probe so reloaded key material is used.
// Check is a map key, so implementations must be comparable (pointers).
type TLSSource interface {
	// ProbeTLS returns a configuration the caller may modify; host is the
	// check's Host ("" for none), which it may send as the server name. An
	// error (material not loaded) fails the probe.
	ProbeTLS(host string) (*tls.Config, error)
}

// tlsConfigKey carries a probe's TLS configuration to dialTLS.
type tlsConfigKey struct{}

// probeTLS returns the TLS configuration of a probe of c speaking alpn.
func probeTLS(c Check, alpn string) (*tls.Config, error) {
	cfg, err := c.TLS.ProbeTLS(c.Host)
	if err != nil {
		return nil, fmt.Errorf("health check TLS: %w", err)
	}
	cfg.NextProtos = []string{alpn}
	return cfg, nil
}

// dialTLS dials and handshakes an HTTPS probe with the configuration its
// context carries.
func (c *Checkers) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg, _ := ctx.Value(tlsConfigKey{}).(*tls.Config)
	if cfg == nil {
		return nil, errors.New("health check: no TLS configuration")
	}
	raw, err := c.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, err := handshake(ctx, raw, cfg)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// handshake runs a probe's TLS client handshake on conn.
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("health check TLS handshake: %w", err)
	}
	return tc, nil
}

// acceptedStatus parses a Check's Status; nil means 2xx or 3xx.
func acceptedStatus(s string) []snapshot.StatusRange {
	if s == "" {
		return nil
	}
	r, err := snapshot.ParseStatusRanges(s)
	if err != nil { // snapshots are validated; keep the default rather than fail every probe
		return nil
	}
	return r
}

// statusPasses reports whether code is accepted.
func statusPasses(accept []snapshot.StatusRange, code int) bool {
	if accept == nil {
		return code >= 200 && code < 400
	}
	for _, r := range accept {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

// gRPC health protocol (grpc/grpc-proto grpc/health/v1/health.proto).
const (
	grpcHealthPath = "/grpc.health.v1.Health/Check"
	grpcServing    = 1 // HealthCheckResponse.ServingStatus SERVING
	maxGRPCReply   = 64 << 10
)

// GRPCStatusError is a gRPC check that got an answer other than SERVING:
// a non-OK grpc-status (Code, Message), or Serving, the status the server
// reported.
type GRPCStatusError struct {
	Code    string
	Message string
	Serving uint64
}

func (e *GRPCStatusError) Error() string {
	switch e.Code {
	case "":
		return "grpc health check: the answer has no grpc-status"
	case "0":
		return "grpc health check: serving status " + strconv.FormatUint(e.Serving, 10) + ", not SERVING"
	}
	return "grpc health check: grpc-status " + e.Code + " " + strconv.Quote(e.Message)
}

// grpcRequest is a length-prefixed HealthCheckRequest{service}.
func grpcRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = protowire.AppendTag(msg, 1, protowire.BytesType)
		msg = protowire.AppendString(msg, service)
	}
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcServingStatus decodes a length-prefixed HealthCheckResponse and
// returns its status field (0, UNKNOWN, when absent).
func grpcServingStatus(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, errors.New("grpc health check: short reply")
	}
	if b[0] != 0 {
		return 0, errors.New("grpc health check: compressed reply")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint64(n) != uint64(len(b)-5) {
		return 0, errors.New("grpc health check: reply length does not match its prefix")
	}
	msg, status := b[5:], uint64(0)
	for len(msg) > 0 {
		num, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return 0, fmt.Errorf("grpc health check: bad reply: %w", protowire.ParseError(l))
		}
		msg = msg[l:]
		if num == 1 && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(msg)
			if l < 0 {
				return 0, fmt.Errorf("grpc health check: bad reply: %w", protowire.ParseError(l))
			}
			status, msg = v, msg[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(num, typ, msg)
		if l < 0 {
			return 0, fmt.Errorf("grpc health check: bad reply: %w", protowire.ParseError(l))
		}
		msg = msg[l:]
	}
	return status, nil
}

// probeGRPC makes one Health/Check call to addr on a connection of its
// own: prior-knowledge HTTP/2 (h2c) without TLS, ALPN h2 with it.
func (c *Checkers) probeGRPC(ctx context.Context, addr string, chk Check) error {
	var cfg *tls.Config
	if chk.TLS != nil {
		var err error
		if cfg, err = probeTLS(chk, "h2"); err != nil {
			return err
		}
	}
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	scheme := "http://"
	if cfg != nil {
		tc, err := handshake(ctx, conn, cfg)
		if err != nil {
			return err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			return fmt.Errorf("grpc health check: the endpoint negotiated %q, not h2", p)
		}
		conn, scheme = tc, "https://"
	}
	cc, err := c.h2.NewClientConn(conn)
	if err != nil {
		return err
	}
	defer cc.Close()
	authority := chk.Host
	if authority == "" {
		authority = addr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+authority+grpcHealthPath, bytes.NewReader(grpcRequest(chk.Service)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "portico-health-check")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGRPCReply))
	if err != nil {
		return err
	}
	code, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if code == "" { // trailers-only answer
		code, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if code != "0" {
		return &GRPCStatusError{Code: code, Message: msg}
	}
	serving, err := grpcServingStatus(body)
	if err != nil {
		return err
	}
	if serving != grpcServing {
		return &GRPCStatusError{Code: "0", Serving: serving}
	}
	return nil
}
