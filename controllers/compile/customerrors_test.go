package compile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func TestCompileCustomErrors(t *testing.T) {
	const np = annotations.NginxPrefix
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	svcs := []corev1.Service{
		service("default", "web", corev1.ServicePort{Name: "http", Port: 80}),
		service("default", "idle", corev1.ServicePort{Name: "http", Port: 80}),
		service("default", "pages", corev1.ServicePort{Name: "http", Port: 8080}, corev1.ServicePort{Name: "admin", Port: 9000}),
		service("default", "pages-idle", corev1.ServicePort{Name: "http", Port: 8080}),
	}
	eps := []discoveryv1.EndpointSlice{
		slice("default", "web", "web-1", "http", 8080, nil, "10.0.0.1"),
		slice("default", "pages", "pages-1", "http", 8081, nil, "10.0.9.1"),
	}
	pages := &snapshot.Backend{Name: "default/pages:8080", Endpoints: []string{"10.0.9.1:8081"}}
	ing := func(svc string, kv ...string) networkingv1.Ingress {
		return annotate(ingress("default", "a", "portico", 1, "h", path{"/", prefix, svc, port80}), kv...)
	}
	tests := map[string]struct {
		ing          networkingv1.Ingress
		wantErrors   *snapshot.CustomErrors
		wantBackend  string
		wantWarnings []string // reasons
	}{
		"codes with a default-backend": {ing: ing("web", np+"custom-http-errors", "503, 404,503", np+"default-backend", "pages"),
			wantErrors: &snapshot.CustomErrors{Codes: []int{404, 503}, Backend: pages}, wantBackend: "default/web:80"},
		"codes alone: the instance's default backend": {ing: ing("web", np+"custom-http-errors", "500"),
			wantErrors: &snapshot.CustomErrors{Codes: []int{500}}, wantBackend: "default/web:80"},
		"default-backend alone: used when the Service has no endpoints": {ing: ing("idle", np+"default-backend", "pages"),
			wantBackend: "default/pages:8080", wantWarnings: []string{ReasonNoEndpoints, ReasonDefaultBackendFallback}},
		"default-backend alone, Service has endpoints: unchanged": {ing: ing("web", np+"default-backend", "pages"), wantBackend: "default/web:80"},
		"default-backend without endpoints either: no fallback": {ing: ing("idle", np+"default-backend", "pages-idle"),
			wantBackend: "default/idle:80", wantWarnings: []string{ReasonNoEndpoints, ReasonNoEndpoints}},
		"missing default-backend Service: warning, instance default": {ing: ing("web", np+"custom-http-errors", "502", np+"default-backend", "nope"),
			wantErrors: &snapshot.CustomErrors{Codes: []int{502}}, wantBackend: "default/web:80", wantWarnings: []string{ReasonServiceNotFound}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{tc.ing}, Services: svcs, EndpointSlices: eps})
			if _, err := snapshot.Decode(out.Encoded); err != nil {
				t.Fatalf("snapshot does not decode: %v", err)
			}
			res := out.Results[0]
			if !res.Accepted {
				t.Fatalf("rejected: %+v", res)
			}
			r := out.Snapshot.Hosts[0].Routes[0]
			if diff := cmp.Diff(tc.wantErrors, r.CustomErrors); diff != "" {
				t.Errorf("customErrors (-want +got):\n%s", diff)
			}
			if r.Backend.Name != tc.wantBackend {
				t.Errorf("backend %s, want %s", r.Backend.Name, tc.wantBackend)
			}
			var reasons []string
			for _, w := range res.Warnings {
				reasons = append(reasons, w.Reason)
				if w.Reason == ReasonDefaultBackendFallback && !strings.Contains(w.Message, "default/pages:8080") {
					t.Errorf("fallback warning does not name the default backend: %s", w.Message)
				}
			}
			if diff := cmp.Diff(tc.wantWarnings, reasons); diff != "" {
				t.Errorf("warning reasons (-want +got):\n%s", diff)
			}
		})
	}
}
