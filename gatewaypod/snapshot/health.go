package snapshot

import (
	"fmt"
	"strings"
)

// HealthCheck is an active health check of every endpoint of a Backend:
// gatewaypod probes each endpoint every IntervalMs and takes it out of
// rotation after UnhealthyThreshold consecutive failures, back in after
// HealthyThreshold consecutive successes.
type HealthCheck struct {
	// Path, when set, makes the check an HTTP GET of this path (and query)
	// that passes on a 2xx or 3xx answer; "" means a TCP connect.
	Path string `json:"path,omitempty"`
	// Port is probed instead of the endpoint's own port; 0 means the
	// endpoint's port.
	Port int `json:"port,omitempty"`
	// IntervalMs is the time between two probes of an endpoint.
	IntervalMs int `json:"intervalMs"`
	// TimeoutMs bounds one probe; it is less than IntervalMs.
	TimeoutMs int `json:"timeoutMs"`
	// HealthyThreshold and UnhealthyThreshold are the consecutive
	// successes and failures that change an endpoint's state, >= 1.
	HealthyThreshold   int `json:"healthyThreshold"`
	UnhealthyThreshold int `json:"unhealthyThreshold"`
	// GRPC makes the check a grpc.health.v1.Health/Check call (h2c for
	// GRPC routes, TLS for GRPCS) that passes on SERVING; Path is then "".
	GRPC bool `json:"grpc,omitempty"`
	// GRPCService is the service name the gRPC check asks about; "" asks
	// about the server as a whole.
	GRPCService string `json:"grpcService,omitempty"`
	// Host is the Host header (authority) of HTTP and gRPC checks, and
	// their TLS server name unless the route sets one; "" means the
	// endpoint address.
	Host string `json:"host,omitempty"`
	// Status lists the HTTP status codes that pass, as in "200,204,301-302"
	// (see ParseStatusRanges); "" means 2xx or 3xx.
	Status string `json:"status,omitempty"`
}

// Bounds of HealthCheck fields, shared by the annotation parser.
const (
	MinHealthCheckIntervalMs = 100
	MaxHealthCheckIntervalMs = 300_000 // below the proxy's endpoint state TTL
	MaxHealthCheckThreshold  = 100
)

// validateHealthCheck checks h; nil is valid (no active check).
func validateHealthCheck(where string, h *HealthCheck) []error {
	if h == nil {
		return nil
	}
	var errs []error
	if h.Path != "" && (!strings.HasPrefix(h.Path, "/") || hasControl(h.Path) || strings.ContainsAny(h.Path, " #")) {
		errs = append(errs, fmt.Errorf("%s.healthCheck: path %q must start with '/' and hold no spaces, '#' or control characters", where, h.Path))
	}
	if h.Port < 0 || h.Port > 65535 {
		errs = append(errs, fmt.Errorf("%s.healthCheck: port %d out of range", where, h.Port))
	}
	if h.IntervalMs < MinHealthCheckIntervalMs || h.IntervalMs > MaxHealthCheckIntervalMs {
		errs = append(errs, fmt.Errorf("%s.healthCheck: intervalMs %d out of [%d, %d]", where, h.IntervalMs, MinHealthCheckIntervalMs, MaxHealthCheckIntervalMs))
	}
	if h.TimeoutMs < 1 || h.TimeoutMs >= h.IntervalMs {
		errs = append(errs, fmt.Errorf("%s.healthCheck: timeoutMs %d must be positive and below intervalMs", where, h.TimeoutMs))
	}
	for _, t := range []int{h.HealthyThreshold, h.UnhealthyThreshold} {
		if t < 1 || t > MaxHealthCheckThreshold {
			errs = append(errs, fmt.Errorf("%s.healthCheck: thresholds must be in [1, %d]", where, MaxHealthCheckThreshold))
			break
		}
	}
	errs = append(errs, validateHealthCheckProbe(where, h)...)
	return errs
}
