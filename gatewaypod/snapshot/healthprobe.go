package snapshot

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// maxStatusRanges bounds a HealthCheck.Status list.
const maxStatusRanges = 32

// MaxGRPCServiceLen bounds HealthCheck.GRPCService, shared by the
// annotation parser.
const MaxGRPCServiceLen = 1024

// ParseStatusRanges parses a comma-separated list of status codes and
// inclusive ranges, as in "200", "200-299" or "200,204,301-302". Codes are
// in [100, 599]; a range's low end is not above its high end.
func ParseStatusRanges(s string) ([]StatusRange, error) {
	parts := strings.Split(s, ",")
	if len(parts) > maxStatusRanges {
		return nil, fmt.Errorf("at most %d codes or ranges", maxStatusRanges)
	}
	out := make([]StatusRange, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		lo, hi, isRange := strings.Cut(p, "-")
		if !isRange {
			hi = lo
		}
		a, errA := statusCode(strings.TrimSpace(lo))
		b, errB := statusCode(strings.TrimSpace(hi))
		if errA != nil || errB != nil {
			return nil, fmt.Errorf("%q is not a status code (100-599) or a range of them like 200-299", p)
		}
		if a > b {
			return nil, fmt.Errorf("range %q runs backwards", p)
		}
		out = append(out, StatusRange{a, b})
	}
	return out, nil
}

func statusCode(s string) (int, error) {
	if len(s) != 3 {
		return 0, fmt.Errorf("not three digits")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("not in [100, 599]")
	}
	return n, nil
}

// validateHealthCheckProbe checks the probe-shaping fields of h: the gRPC
// kind, the Host and the accepted statuses.
func validateHealthCheckProbe(where string, h *HealthCheck) []error {
	var errs []error
	if h.GRPC && h.Path != "" {
		errs = append(errs, fmt.Errorf("%s.healthCheck: a gRPC check has no path", where))
	}
	if !h.GRPC && h.GRPCService != "" {
		errs = append(errs, fmt.Errorf("%s.healthCheck: grpcService needs grpc", where))
	}
	if len(h.GRPCService) > MaxGRPCServiceLen || hasControl(h.GRPCService) {
		errs = append(errs, fmt.Errorf("%s.healthCheck: grpcService must be at most %d bytes without control characters", where, MaxGRPCServiceLen))
	}
	if h.Host != "" {
		if h.Path == "" && !h.GRPC {
			errs = append(errs, fmt.Errorf("%s.healthCheck: host needs an HTTP or gRPC check", where))
		}
		if err := ValidHost(h.Host, false); err != nil {
			errs = append(errs, fmt.Errorf("%s.healthCheck: %w", where, err))
		}
	}
	if h.Status != "" {
		if h.Path == "" {
			errs = append(errs, fmt.Errorf("%s.healthCheck: status needs an HTTP check", where))
		}
		if _, err := ParseStatusRanges(h.Status); err != nil {
			errs = append(errs, fmt.Errorf("%s.healthCheck: status: %w", where, err))
		}
	}
	return errs
}
