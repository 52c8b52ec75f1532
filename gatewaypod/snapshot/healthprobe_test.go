package snapshot

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatusRanges(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []StatusRange
		wantErr string
	}{
		"one code":        {in: "200", want: []StatusRange{{200, 200}}},
		"a range":         {in: "200-299", want: []StatusRange{{200, 299}}},
		"a list":          {in: "200,204,301-302", want: []StatusRange{{200, 200}, {204, 204}, {301, 302}}},
		"spaces":          {in: " 200 , 301 - 302 ", want: []StatusRange{{200, 200}, {301, 302}}},
		"empty":           {in: "", wantErr: "not a status code"},
		"empty item":      {in: "200,", wantErr: "not a status code"},
		"two digits":      {in: "20", wantErr: "not a status code"},
		"out of range":    {in: "600", wantErr: "not a status code"},
		"below 100":       {in: "099", wantErr: "not a status code"},
		"sign":            {in: "+20", wantErr: "not a status code"},
		"word":            {in: "2xx", wantErr: "not a status code"},
		"backwards":       {in: "299-200", wantErr: "runs backwards"},
		"open range":      {in: "200-", wantErr: "not a status code"},
		"double dash":     {in: "200-250-299", wantErr: "not a status code"},
		"too many ranges": {in: strings.Repeat("200,", maxStatusRanges) + "200", wantErr: "at most"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseStatusRanges(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ranges (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeHealthCheckProbe: a snapshot whose check has a bad gRPC, Host
// or Status field is refused, as pods refuse any invalid snapshot.
func TestDecodeHealthCheckProbe(t *testing.T) {
	base := func() *HealthCheck {
		return &HealthCheck{Path: "/healthz", IntervalMs: 1000, TimeoutMs: 500, HealthyThreshold: 1, UnhealthyThreshold: 1}
	}
	tests := map[string]struct {
		mut     func(h *HealthCheck)
		wantErr string
	}{
		"http with host and status": {mut: func(h *HealthCheck) { h.Host, h.Status = "health.example.com", "200,301-302" }},
		"grpc with service": {mut: func(h *HealthCheck) {
			h.Path, h.GRPC, h.GRPCService, h.Host = "", true, "orders.v1.Orders", "api.example.com"
		}},
		"grpc with a path":       {mut: func(h *HealthCheck) { h.GRPC = true }, wantErr: "a gRPC check has no path"},
		"service without grpc":   {mut: func(h *HealthCheck) { h.GRPCService = "orders" }, wantErr: "grpcService needs grpc"},
		"service with a control": {mut: func(h *HealthCheck) { h.Path, h.GRPC, h.GRPCService = "", true, "a\nb" }, wantErr: "control characters"},
		"host not a DNS name":    {mut: func(h *HealthCheck) { h.Host = "bad host" }, wantErr: "not a lower-case DNS name"},
		"host with a port":       {mut: func(h *HealthCheck) { h.Host = "a.example.com:80" }, wantErr: "not a lower-case DNS name"},
		"host on a tcp check":    {mut: func(h *HealthCheck) { h.Path, h.Host = "", "a.example.com" }, wantErr: "host needs an HTTP or gRPC check"},
		"bad status":             {mut: func(h *HealthCheck) { h.Status = "2xx" }, wantErr: "status"},
		"status on a grpc check": {mut: func(h *HealthCheck) { h.Path, h.GRPC, h.Status = "", true, "200" }, wantErr: "status needs an HTTP check"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := base()
			tc.mut(h)
			_, err := Decode(sealed(func(s *Snapshot) { s.Hosts[0].Routes[0].Backend.HealthCheck = h }))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
