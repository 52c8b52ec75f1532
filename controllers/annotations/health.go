package annotations

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Active health check defaults.
const (
	defaultHealthInterval  = 5 // seconds
	defaultHealthTimeout   = 2 // seconds
	defaultHealthHealthy   = 2
	defaultHealthUnhealthy = 3
)

// Health is the active health check group.
type Health struct {
	// Check is the check of every backend of the Ingress; nil when off.
	Check *snapshot.HealthCheck
}

func vHealthPath(v string) error {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " #") || len(v) > 1024 {
		return errors.New(`must be a path starting with "/", with an optional query, without spaces or "#"`)
	}
	return nil
}

func vHealthStatus(v string) error {
	_, err := snapshot.ParseStatusRanges(v)
	return err
}

func vGRPCService(v string) error {
	if len(strings.TrimSpace(v)) > snapshot.MaxGRPCServiceLen {
		return fmt.Errorf("longer than %d bytes", snapshot.MaxGRPCServiceLen)
	}
	return nil
}

// HealthGroup reads the portico.dev/health-check* annotations. Checks are
// on when health-check or health-check-path is set; the other annotations
// tune them.
var HealthGroup = &Group[Health]{
	Name: "health",
	Annotations: []Annotation{
		{Name: "health-check", Validator: vEnum("http", "tcp", "grpc"), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Actively checks every endpoint of the Ingress's backends: http (GET health-check-path, a health-check-status code passes; over TLS with the proxy-ssl-* settings for backend-protocol HTTPS or GRPCS), tcp (a connect passes) or grpc (grpc.health.v1.Health/Check answers SERVING; backend-protocol GRPC or GRPCS). An endpoint failing its check gets no traffic unless every endpoint of the backend fails (then all get traffic)."},
		{Name: "health-check-path", Validator: vHealthPath, Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: `Path (and query) of the HTTP check; setting it turns on http checks. Default "/".`},
		{Name: "health-check-host", Validator: vHost, Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Host header (gRPC authority) of http and grpc checks, and their TLS server name (SNI) unless proxy-ssl-name is set; default: the endpoint address."},
		{Name: "health-check-status", Validator: vHealthStatus, Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: `Status codes that pass an http check: codes and ranges, e.g. "200", "200-299" or "200,204,301-302"; default 2xx or 3xx.`},
		{Name: "health-check-grpc-service", Validator: vGRPCService, Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: `Service name a grpc check asks about; default "" (the server as a whole).`},
		{Name: "health-check-port", Validator: vInt(1, 65535), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Port probed instead of the endpoint's own port."},
		{Name: "health-check-interval", Validator: vInt(1, snapshot.MaxHealthCheckIntervalMs/1000), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Seconds between two probes of an endpoint; default 5."},
		{Name: "health-check-timeout", Validator: vInt(1, 60), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Seconds one probe may take, less than the interval; default 2."},
		{Name: "health-check-healthy-threshold", Validator: vInt(1, snapshot.MaxHealthCheckThreshold), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Consecutive passing probes that put an endpoint back; default 2."},
		{Name: "health-check-unhealthy-threshold", Validator: vInt(1, snapshot.MaxHealthCheckThreshold), Scope: ScopeIngress, Risk: RiskLow, PorticoOnly: true,
			Doc: "Consecutive failing probes that take an endpoint out; default 3."},
	},
	parse: func(r *reader) (Health, error) {
		kind, path := r.str("health-check"), r.str("health-check-path")
		if kind == "" && path == "" {
			for _, n := range []string{"health-check-host", "health-check-status", "health-check-grpc-service", "health-check-port", "health-check-interval", "health-check-timeout", "health-check-healthy-threshold", "health-check-unhealthy-threshold"} {
				if r.has(n) {
					r.warnf("annotation %s has no effect without %shealth-check or %shealth-check-path", r.key(n), PorticoPrefix, PorticoPrefix)
				}
			}
			return Health{}, nil
		}
		if kind == "tcp" && path != "" {
			return Health{}, r.errorf("health-check-path", ReasonInvalidAnnotation, "a path needs health-check: http, not tcp")
		}
		if kind == "grpc" {
			if path != "" {
				return Health{}, r.errorf("health-check-path", ReasonInvalidAnnotation, "a path needs health-check: http, not grpc")
			}
			if p := strings.ToUpper(r.str("backend-protocol")); p != snapshot.ProtocolGRPC && p != snapshot.ProtocolGRPCS {
				return Health{}, r.errorf("health-check", ReasonInvalidAnnotation, "grpc checks need backend-protocol GRPC or GRPCS")
			}
		} else if r.has("health-check-grpc-service") {
			return Health{}, r.errorf("health-check-grpc-service", ReasonInvalidAnnotation, "a gRPC service name needs health-check: grpc")
		}
		if kind == "tcp" {
			for _, n := range []string{"health-check-host", "health-check-status"} {
				if r.has(n) {
					return Health{}, r.errorf(n, ReasonInvalidAnnotation, "%s needs health-check: http, not tcp", r.key(n))
				}
			}
		}
		if kind == "grpc" && r.has("health-check-status") {
			return Health{}, r.errorf("health-check-status", ReasonInvalidAnnotation, "status codes need health-check: http, not grpc (SERVING passes)")
		}
		if kind == "" || kind == "http" {
			if path == "" {
				path = "/"
			}
		}
		hc := &snapshot.HealthCheck{
			Path:               path,
			Port:               r.integer("health-check-port", 0),
			IntervalMs:         r.integer("health-check-interval", defaultHealthInterval) * 1000,
			TimeoutMs:          r.integer("health-check-timeout", defaultHealthTimeout) * 1000,
			HealthyThreshold:   r.integer("health-check-healthy-threshold", defaultHealthHealthy),
			UnhealthyThreshold: r.integer("health-check-unhealthy-threshold", defaultHealthUnhealthy),
			GRPC:               kind == "grpc",
			GRPCService:        r.str("health-check-grpc-service"),
			Host:               strings.ToLower(r.str("health-check-host")),
			Status:             strings.ReplaceAll(r.str("health-check-status"), " ", ""),
		}
		if hc.TimeoutMs >= hc.IntervalMs {
			name := "health-check-timeout"
			if !r.has(name) {
				name = "health-check-interval"
			}
			return Health{}, r.errorf(name, ReasonInvalidAnnotation, "the timeout (%d s) must be less than the interval (%d s)", hc.TimeoutMs/1000, hc.IntervalMs/1000)
		}
		return Health{Check: hc}, nil
	},
}
