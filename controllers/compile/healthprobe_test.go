package compile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestCompileHealthCheckProbes: grpc checks, health-check-host and
// health-check-status reach the snapshot beside the route's protocol; a
// bad value, or a grpc check of a non-gRPC backend, rejects only its
// Ingress with InvalidAnnotation.
func TestCompileHealthCheckProbes(t *testing.T) {
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	web := service("default", "web", corev1.ServicePort{Name: "http", Port: 80})
	grpcs := annotate(ingress("default", "grpcs", "portico", 10, "g", path{"/", prefix, "web", port80}),
		"nginx.ingress.kubernetes.io/backend-protocol", "GRPCS", "portico.dev/health-check", "grpc",
		"portico.dev/health-check-grpc-service", "orders.v1.Orders", "portico.dev/health-check-host", "api.example.com")
	https := annotate(ingress("default", "https", "portico", 9, "s", path{"/", prefix, "web", port80}),
		"nginx.ingress.kubernetes.io/backend-protocol", "HTTPS", "portico.dev/health-check-path", "/healthz",
		"portico.dev/health-check-status", "200,301-302", "portico.dev/health-check-host", "web.example.com")
	badHost := annotate(ingress("default", "bad-host", "portico", 3, "bh", path{"/", prefix, "web", port80}),
		"portico.dev/health-check", "http", "portico.dev/health-check-host", "not a host")
	badStatus := annotate(ingress("default", "bad-status", "portico", 2, "bs", path{"/", prefix, "web", port80}),
		"portico.dev/health-check", "http", "portico.dev/health-check-status", "200-2xx")
	grpcOnHTTP := annotate(ingress("default", "grpc-on-http", "portico", 1, "gh", path{"/", prefix, "web", port80}),
		"portico.dev/health-check", "grpc")

	out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Services: []corev1.Service{web},
		Ingresses: []networkingv1.Ingress{grpcs, https, badHost, badStatus, grpcOnHTTP}})
	s, err := snapshot.Decode(out.Encoded)
	if err != nil {
		t.Fatalf("snapshot does not decode: %v", err)
	}
	hosts := map[string]snapshot.Route{}
	for _, vh := range s.Hosts {
		hosts[vh.Host] = vh.Routes[0]
	}
	want := map[string]*snapshot.HealthCheck{
		"g": {IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3, GRPC: true, GRPCService: "orders.v1.Orders", Host: "api.example.com"},
		"s": {Path: "/healthz", IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3, Host: "web.example.com", Status: "200,301-302"},
	}
	for h, hc := range want {
		if diff := cmp.Diff(hc, hosts[h].Backend.HealthCheck); diff != "" {
			t.Errorf("host %s check (-want +got):\n%s", h, diff)
		}
	}
	if u := hosts["g"].Upstream; u == nil || u.Protocol != snapshot.ProtocolGRPCS {
		t.Errorf("host g upstream = %+v, want GRPCS", u)
	}
	for _, res := range out.Results {
		accepted := res.Ingress.Name == "grpcs" || res.Ingress.Name == "https"
		if res.Accepted != accepted {
			t.Errorf("%s accepted = %v (%s: %s), want %v", res.Ingress.Name, res.Accepted, res.Reason, res.Message, accepted)
		}
		if !accepted && res.Reason != annotations.ReasonInvalidAnnotation {
			t.Errorf("%s: reason %s, want %s", res.Ingress.Name, res.Reason, annotations.ReasonInvalidAnnotation)
		}
	}
}
