package compile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// TestCompileHealthCheck: the health-check annotations of an Ingress
// become the HealthCheck of each of its backends (rules, defaultBackend,
// and a canary's own backend), and an invalid one rejects the Ingress only.
func TestCompileHealthCheck(t *testing.T) {
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	web := service("default", "web", corev1.ServicePort{Name: "http", Port: 80})
	beta := service("default", "beta", corev1.ServicePort{Name: "http", Port: 80})
	primary := annotate(ingress("default", "main", "portico", 10, "h", path{"/", prefix, "web", port80}),
		"portico.dev/health-check-path", "/healthz", "portico.dev/health-check-interval", "10")
	primary.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: port80}}
	canary := annotate(ingress("default", "canary", "portico", 5, "h", path{"/", prefix, "beta", port80}),
		"nginx.ingress.kubernetes.io/canary", "true", "nginx.ingress.kubernetes.io/canary-weight", "10", "portico.dev/health-check", "tcp")
	plain := ingress("default", "plain", "portico", 3, "other", path{"/", prefix, "web", port80})
	bad := annotate(ingress("default", "bad", "portico", 1, "bad", path{"/", prefix, "web", port80}),
		"portico.dev/health-check", "tcp", "portico.dev/health-check-path", "/x")

	out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{primary, canary, plain, bad},
		Services: []corev1.Service{web, beta}})
	s, err := snapshot.Decode(out.Encoded)
	if err != nil {
		t.Fatalf("snapshot does not decode: %v", err)
	}
	httpCheck := &snapshot.HealthCheck{Path: "/healthz", IntervalMs: 10000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3}
	tcpCheck := &snapshot.HealthCheck{IntervalMs: 5000, TimeoutMs: 2000, HealthyThreshold: 2, UnhealthyThreshold: 3}
	hosts := map[string]snapshot.VirtualHost{}
	for _, vh := range s.Hosts {
		hosts[vh.Host] = vh
	}
	r := hosts["h"].Routes[0]
	if diff := cmp.Diff(httpCheck, r.Backend.HealthCheck); diff != "" {
		t.Errorf("route backend check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(httpCheck, hosts["h"].DefaultBackend.HealthCheck); diff != "" {
		t.Errorf("defaultBackend check (-want +got):\n%s", diff)
	}
	if len(r.Canaries) != 1 {
		t.Fatalf("canaries = %+v", r.Canaries)
	}
	if diff := cmp.Diff(tcpCheck, r.Canaries[0].Backend.HealthCheck); diff != "" {
		t.Errorf("canary backend check (-want +got):\n%s", diff)
	}
	if c := hosts["other"].Routes[0].Backend.HealthCheck; c != nil {
		t.Errorf("Ingress without health annotations got check %+v", c)
	}
	for _, res := range out.Results {
		want := res.Ingress.Name != "bad"
		if res.Accepted != want {
			t.Errorf("%s accepted = %v (%s: %s), want %v", res.Ingress.Name, res.Accepted, res.Reason, res.Message, want)
		}
		if res.Ingress.Name == "bad" && res.Reason != annotations.ReasonInvalidAnnotation {
			t.Errorf("bad: reason %s, want %s", res.Reason, annotations.ReasonInvalidAnnotation)
		}
	}
}
