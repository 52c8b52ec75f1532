package annotations

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

const pd = PorticoPrefix

func TestHealthGroup(t *testing.T) {
	tests := map[string]struct {
		in           map[string]string
		want         *snapshot.HealthCheck
		wantWarnings int
		wantErrKey   string
		wantErrMatch string
	}{
		"off": {in: map[string]string{pd + "enable-cors": "false"}},
		"path alone is http with defaults": {in: map[string]string{pd + "health-check-path": "/healthz?full=1"},
			want: &snapshot.HealthCheck{Path: "/healthz?full=1", IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3}},
		"http without path checks /": {in: map[string]string{pd + "health-check": "http"},
			want: &snapshot.HealthCheck{Path: "/", IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3}},
		"tcp, tuned": {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-port": "8081", pd + "health-check-interval": "10",
			pd + "health-check-timeout": "3", pd + "health-check-healthy-threshold": "1", pd + "health-check-unhealthy-threshold": "5"},
			want: &snapshot.HealthCheck{Port: 8081, IntervalMs: 10000, TimeoutMs: 3000, HealthyThreshold: 1, UnhealthyThreshold: 5}},
		"tuning without a check warns": {in: map[string]string{pd + "health-check-interval": "10"}, wantWarnings: 1},
		"nginx prefix is not read":     {in: map[string]string{NginxPrefix + "health-check-path": "/h"}, wantWarnings: 1},
		"tcp with a path":              {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-path": "/h"}, wantErrKey: pd + "health-check-path", wantErrMatch: "needs health-check: http"},
		"unknown kind":                 {in: map[string]string{pd + "health-check": "udp"}, wantErrKey: pd + "health-check", wantErrMatch: "one of http, tcp, grpc"},
		"http with host and status": {in: map[string]string{pd + "health-check": "http", pd + "health-check-host": " Health.Example.com ", pd + "health-check-status": "200, 204,301-302"},
			want: &snapshot.HealthCheck{Path: "/", IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3, Host: "health.example.com", Status: "200,204,301-302"}},
		"grpc on a GRPCS backend": {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "grpcs", pd + "health-check-grpc-service": "orders.v1.Orders", pd + "health-check-host": "api.example.com"},
			want: &snapshot.HealthCheck{IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3, GRPC: true, GRPCService: "orders.v1.Orders", Host: "api.example.com"}},
		"grpc on a GRPC backend, server": {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "GRPC"},
			want: &snapshot.HealthCheck{IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3, GRPC: true}},
		"grpc on an HTTP backend":  {in: map[string]string{pd + "health-check": "grpc"}, wantErrKey: pd + "health-check", wantErrMatch: "need backend-protocol GRPC or GRPCS"},
		"grpc on an HTTPS backend": {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "HTTPS"}, wantErrKey: pd + "health-check", wantErrMatch: "need backend-protocol GRPC or GRPCS"},
		"grpc with a path":         {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "GRPC", pd + "health-check-path": "/h"}, wantErrKey: pd + "health-check-path", wantErrMatch: "not grpc"},
		"grpc with status codes":   {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "GRPC", pd + "health-check-status": "200"}, wantErrKey: pd + "health-check-status", wantErrMatch: "SERVING passes"},
		"service without grpc":     {in: map[string]string{pd + "health-check": "http", pd + "health-check-grpc-service": "orders"}, wantErrKey: pd + "health-check-grpc-service", wantErrMatch: "needs health-check: grpc"},
		"service too long": {in: map[string]string{pd + "health-check": "grpc", NginxPrefix + "backend-protocol": "GRPC", pd + "health-check-grpc-service": strings.Repeat("s", snapshot.MaxGRPCServiceLen+1)},
			wantErrKey: pd + "health-check-grpc-service", wantErrMatch: "longer than 1024 bytes"},
		"host on tcp":                        {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-host": "a.example.com"}, wantErrKey: pd + "health-check-host", wantErrMatch: "not tcp"},
		"status on tcp":                      {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-status": "200"}, wantErrKey: pd + "health-check-status", wantErrMatch: "not tcp"},
		"host not a hostname":                {in: map[string]string{pd + "health-check": "http", pd + "health-check-host": "a b.example.com"}, wantErrKey: pd + "health-check-host", wantErrMatch: "DNS name"},
		"host with a port":                   {in: map[string]string{pd + "health-check": "http", pd + "health-check-host": "a.example.com:8080"}, wantErrKey: pd + "health-check-host", wantErrMatch: "DNS name"},
		"status bad syntax":                  {in: map[string]string{pd + "health-check": "http", pd + "health-check-status": "2xx"}, wantErrKey: pd + "health-check-status", wantErrMatch: "not a status code"},
		"status backwards":                   {in: map[string]string{pd + "health-check": "http", pd + "health-check-status": "299-200"}, wantErrKey: pd + "health-check-status", wantErrMatch: "runs backwards"},
		"host without a check warns":         {in: map[string]string{pd + "health-check-host": "a.example.com", pd + "health-check-status": "200"}, wantWarnings: 2},
		"relative path":                      {in: map[string]string{pd + "health-check-path": "healthz"}, wantErrKey: pd + "health-check-path", wantErrMatch: "starting with"},
		"timeout not below interval":         {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-interval": "2", pd + "health-check-timeout": "2"}, wantErrKey: pd + "health-check-timeout", wantErrMatch: "less than the interval"},
		"interval below the default timeout": {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-interval": "1"}, wantErrKey: pd + "health-check-interval", wantErrMatch: "less than the interval"},
		"interval too long":                  {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-interval": "301"}, wantErrKey: pd + "health-check-interval", wantErrMatch: "between 1 and 300"},
		"threshold zero":                     {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-healthy-threshold": "0"}, wantErrKey: pd + "health-check-healthy-threshold", wantErrMatch: "between 1 and 100"},
		"port out of range":                  {in: map[string]string{pd + "health-check": "tcp", pd + "health-check-port": "70000"}, wantErrKey: pd + "health-check-port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseMap(tc.in)
			if tc.wantErrKey != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Annotation != tc.wantErrKey || ae.Reason != ReasonInvalidAnnotation || !strings.Contains(ae.Message, tc.wantErrMatch) {
					t.Fatalf("error = %v, want an InvalidAnnotation on %s containing %q", err, tc.wantErrKey, tc.wantErrMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Health.Check); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(c.Warnings) != tc.wantWarnings {
				t.Errorf("warnings %q, want %d", c.Warnings, tc.wantWarnings)
			}
			if hc := c.Health.Check; hc != nil {
				// Every accepted check is valid in a snapshot.
				s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix,
					Backend: snapshot.Backend{Name: "b", HealthCheck: hc}}}}}}
				if _, err := snapshot.Decode(snapshot.Seal(s)); err != nil {
					t.Errorf("accepted check is refused by the snapshot: %v", err)
				}
			}
		})
	}
}
