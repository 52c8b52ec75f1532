package compile

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func annotate(ing networkingv1.Ingress, kv ...string) networkingv1.Ingress {
	ing.Annotations = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		ing.Annotations[kv[i]] = kv[i+1]
	}
	return ing
}

func TestCompileFeatures(t *testing.T) {
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	web := service("default", "web", corev1.ServicePort{Name: "http", Port: 80})
	primary := ingress("default", "main", "portico", 10, "h", path{"/", prefix, "web", port80})
	pc := func(name string, age int, kv ...string) networkingv1.Ingress {
		return annotate(ingress("default", name, "portico", age, "h", path{"/", prefix, "web", port80}), kv...)
	}
	type check func(t *testing.T, out Output)
	route := func(out Output, host string, i int) snapshot.Route {
		for _, vh := range out.Snapshot.Hosts {
			if vh.Host == host {
				return vh.Routes[i]
			}
		}
		t.Fatalf("no host %q", host)
		return snapshot.Route{}
	}
	result := func(out Output, name string) Result {
		for _, r := range out.Results {
			if r.Ingress.Name == name {
				return r
			}
		}
		t.Fatalf("no result for %s", name)
		return Result{}
	}
	hasWarning := func(r Result, reason, text string) bool {
		for _, w := range r.Warnings {
			if w.Reason == reason && strings.Contains(w.Message, text) {
				return true
			}
		}
		return false
	}
	tests := map[string]struct {
		ings  []networkingv1.Ingress
		def   *BackendRef
		check check
	}{
		"portico canaries stack, in age order, sharing one total": {
			ings: []networkingv1.Ingress{primary,
				pc("c2", 1, "portico.dev/canary", "true", "portico.dev/canary-weight", "30", "portico.dev/canary-weight-total", "50"),
				pc("c1", 2, "portico.dev/canary", "true", "portico.dev/canary-weight", "10", "portico.dev/canary-weight-total", "50"),
				pc("c3", 0, "portico.dev/canary", "true", "portico.dev/canary-weight", "20", "portico.dev/canary-weight-total", "50"),
				pc("c4", 0, "portico.dev/canary", "true", "portico.dev/canary-weight", "1", "portico.dev/canary-weight-total", "40"),
			},
			check: func(t *testing.T, out Output) {
				cs := route(out, "h", 0).Canaries
				if len(cs) != 2 || cs[0].Source != "default/c1" || cs[1].Source != "default/c2" || cs[0].WeightTotal != 50 {
					t.Fatalf("canaries = %+v", cs)
				}
				if !hasWarning(result(out, "c3"), ReasonCanaryConflict, "add up to 60") {
					t.Errorf("c3 warnings = %+v", result(out, "c3").Warnings)
				}
				if !hasWarning(result(out, "c4"), ReasonCanaryConflict, "differs") {
					t.Errorf("c4 warnings = %+v", result(out, "c4").Warnings)
				}
			},
		},
		"canary is never a primary, even when older": {
			ings: []networkingv1.Ingress{pc("canary", 20, "nginx.ingress.kubernetes.io/canary", "true"), primary},
			check: func(t *testing.T, out Output) {
				r := route(out, "h", 0)
				if r.Source != "default/main" || len(r.Canaries) != 1 || r.Canaries[0].WeightTotal != 0 {
					t.Fatalf("route = %+v", r)
				}
			},
		},
		"invalid regex rejects the Ingress alone": {
			ings: []networkingv1.Ingress{primary, annotate(ingress("default", "rx", "portico", 1, "h", path{"/a(", implSpec, "web", port80}), "nginx.ingress.kubernetes.io/use-regex", "true")},
			check: func(t *testing.T, out Output) {
				if r := result(out, "rx"); r.Accepted || r.Reason != ReasonInvalidPath || !strings.Contains(r.Message, "RE2") {
					t.Errorf("rx = %+v", r)
				}
				if r := result(out, "main"); !r.Accepted {
					t.Errorf("main = %+v", r)
				}
			},
		},
		"use-regex only changes ImplementationSpecific paths of its own Ingress": {
			ings: []networkingv1.Ingress{annotate(ingress("default", "rx", "portico", 1, "h", path{"/a.+", implSpec, "web", port80}, path{"/b", prefix, "web", port80}, path{"/c", exact, "web", port80}), "nginx.ingress.kubernetes.io/use-regex", "true"),
				ingress("default", "plain", "portico", 1, "h", path{"/d.+", implSpec, "web", port80})},
			check: func(t *testing.T, out Output) {
				got := map[string]snapshot.PathType{}
				for _, vh := range out.Snapshot.Hosts {
					for _, r := range vh.Routes {
						got[r.Path] = r.PathType
					}
				}
				want := map[string]snapshot.PathType{"/a.+": snapshot.PathRegex, "/b": snapshot.PathPrefix, "/c": snapshot.PathExact, "/d.+": snapshot.PathPrefix}
				for p, w := range want {
					if got[p] != w {
						t.Errorf("%s: %s, want %s", p, got[p], w)
					}
				}
			},
		},
		"rewrite equal to the path is dropped": {
			ings: []networkingv1.Ingress{annotate(primary, "nginx.ingress.kubernetes.io/rewrite-target", "/")},
			check: func(t *testing.T, out Output) {
				if r := route(out, "h", 0); r.Rewrite != nil || r.PathType != snapshot.PathPrefix {
					t.Errorf("route = %+v", r)
				}
			},
		},
		"GatewayConfig default backend wins over Ingress defaultBackend, which still serves its hosts": {
			def: &BackendRef{Namespace: "default", Service: networkingv1.IngressServiceBackend{Name: "web", Port: portHTTP}},
			ings: []networkingv1.Ingress{func() networkingv1.Ingress {
				ing := ingress("default", "d", "portico", 1, "h", path{"/x", prefix, "web", port80})
				ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "other", Port: port80}}
				return ing
			}()},
			check: func(t *testing.T, out Output) {
				if out.Snapshot.DefaultBackend == nil || out.Snapshot.DefaultBackend.Name != "default/web:http" {
					t.Errorf("default = %+v", out.Snapshot.DefaultBackend)
				}
				if d := out.Snapshot.Hosts[0].DefaultBackend; d == nil || d.Name != "default/other:80" {
					t.Errorf("host default = %+v", d)
				}
			},
		},
		"unresolvable GatewayConfig default backend is an instance warning": {
			def: &BackendRef{Namespace: "default", Service: networkingv1.IngressServiceBackend{Name: "gone", Port: port80}},
			check: func(t *testing.T, out Output) {
				if len(out.Warnings) != 1 || out.Warnings[0].Reason != ReasonServiceNotFound {
					t.Errorf("warnings = %+v", out.Warnings)
				}
			},
		},
		"default backend used nowhere warns": {
			ings: []networkingv1.Ingress{
				func() networkingv1.Ingress {
					ing := ingress("default", "a", "portico", 2, "")
					ing.Spec.Rules = nil
					ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: port80}}
					return ing
				}(),
				func() networkingv1.Ingress {
					ing := ingress("default", "b", "portico", 1, "")
					ing.Spec.Rules = nil
					ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: port80}}
					return ing
				}(),
			},
			check: func(t *testing.T, out Output) {
				if !hasWarning(result(out, "b"), ReasonDefaultBackendUnused, "not used") || len(result(out, "a").Warnings) != 1 {
					t.Errorf("results = %+v", out.Results)
				}
			},
		},
		"legacy class annotation; spec class wins over it": {
			ings: []networkingv1.Ingress{
				annotate(ingress("default", "legacy", "", 1, "l", path{"/", prefix, "web", port80}), "kubernetes.io/ingress.class", "portico"),
				annotate(ingress("default", "both", "other", 1, "b", path{"/", prefix, "web", port80}), "kubernetes.io/ingress.class", "portico"),
			},
			check: func(t *testing.T, out Output) {
				if len(out.Results) != 1 || out.Results[0].Ingress.Name != "legacy" {
					t.Errorf("results = %+v", out.Results)
				}
			},
		},
		"wildcard host, upper case, one label": {
			ings: []networkingv1.Ingress{ingress("default", "w", "portico", 1, "*.Example.COM", path{"/", prefix, "web", port80}),
				ingress("default", "bad", "portico", 1, "a.*.example.com", path{"/", prefix, "web", port80})},
			check: func(t *testing.T, out Output) {
				if out.Snapshot.Hosts[0].Host != "*.example.com" || result(out, "bad").Reason != ReasonInvalidHost {
					t.Errorf("hosts = %+v results = %+v", out.Snapshot.Hosts, out.Results)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: tc.ings, Services: []corev1.Service{web}, DefaultBackend: tc.def})
			if _, err := snapshot.Decode(out.Encoded); err != nil {
				t.Fatalf("snapshot does not decode: %v", err)
			}
			tc.check(t, out)
		})
	}
}
