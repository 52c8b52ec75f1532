package compile

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func class(name, instance string, isDefault bool) networkingv1.IngressClass {
	c := networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.IngressClassSpec{
			Controller: gatewayv1alpha1.ControllerName,
			Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To(gatewayv1alpha1.GroupVersion.Group), Kind: "GatewayConfig", Name: instance,
			},
		},
	}
	if isDefault {
		c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return c
}

func service(ns, name string, ports ...corev1.ServicePort) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func slice(ns, svc, name, portName string, port int32, ready *bool, addrs ...string) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}},
	}
}

type path struct {
	path string
	typ  networkingv1.PathType
	svc  string
	port networkingv1.ServiceBackendPort
}

func ingress(ns, name, className string, age int, host string, paths ...path) networkingv1.Ingress {
	ing := networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Duration(age) * time.Hour)),
	}}
	if className != "" {
		ing.Spec.IngressClassName = ptr.To(className)
	}
	rule := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
	for _, p := range paths {
		rule.HTTP.Paths = append(rule.HTTP.Paths, networkingv1.HTTPIngressPath{
			Path: p.path, PathType: ptr.To(p.typ),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: p.svc, Port: p.port}},
		})
	}
	ing.Spec.Rules = []networkingv1.IngressRule{rule}
	return ing
}

var (
	port80   = networkingv1.ServiceBackendPort{Number: 80}
	portHTTP = networkingv1.ServiceBackendPort{Name: "http"}
	prefix   = networkingv1.PathTypePrefix
	exact    = networkingv1.PathTypeExact
	implSpec = networkingv1.PathTypeImplementationSpecific
)

func TestCompile(t *testing.T) {
	web := service("default", "web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	webSlice := slice("default", "web", "web-1", "http", 8080, nil, "10.244.1.2", "10.244.1.3")
	classes := []networkingv1.IngressClass{class("portico", "gw", false), class("other", "gw2", false)}

	tests := map[string]struct {
		in          Inputs
		wantHosts   []snapshot.VirtualHost
		wantDefault *snapshot.Backend
		wantResults []Result
	}{
		"host and prefix path resolve to ready endpoints": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses:      []networkingv1.Ingress{ingress("default", "a", "portico", 1, "Echo.Example.com", path{"/api/", prefix, "web", port80})},
				Services:       []corev1.Service{web},
				EndpointSlices: []discoveryv1.EndpointSlice{webSlice}},
			wantHosts: []snapshot.VirtualHost{{Host: "echo.example.com", Routes: []snapshot.Route{{
				Path: "/api", PathType: snapshot.PathPrefix, Source: "default/a",
				Backend: snapshot.Backend{Name: "default/web:80", Endpoints: []string{"10.244.1.2:8080", "10.244.1.3:8080"}}}}}},
			wantResults: []Result{{Ingress: nn("default", "a"), Accepted: true, Reason: ReasonAccepted}},
		},
		"other class and other instance are ignored": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{ingress("default", "b", "other", 1, "x.example.com", path{"/", prefix, "web", port80})},
				Services:  []corev1.Service{web}},
			wantResults: []Result{},
		},
		"class-less Ingress goes to the default class only": {
			in: Inputs{Instance: "gw", IngressClasses: []networkingv1.IngressClass{class("portico", "gw", true)},
				Ingresses:      []networkingv1.Ingress{ingress("default", "c", "", 1, "", path{"/", implSpec, "web", portHTTP})},
				Services:       []corev1.Service{web},
				EndpointSlices: []discoveryv1.EndpointSlice{webSlice}},
			wantHosts: []snapshot.VirtualHost{{Host: "", Routes: []snapshot.Route{{
				Path: "/", PathType: snapshot.PathPrefix, Source: "default/c",
				Backend: snapshot.Backend{Name: "default/web:http", Endpoints: []string{"10.244.1.2:8080", "10.244.1.3:8080"}}}}}},
			wantResults: []Result{{Ingress: nn("default", "c"), Accepted: true, Reason: ReasonAccepted}},
		},
		"not-ready endpoints dropped, slices merged and de-duplicated": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{ingress("default", "a", "portico", 1, "h", path{"/", exact, "web", port80})},
				Services:  []corev1.Service{web},
				EndpointSlices: []discoveryv1.EndpointSlice{
					slice("default", "web", "web-1", "http", 8080, ptr.To(true), "10.244.1.3"),
					slice("default", "web", "web-2", "http", 8080, nil, "10.244.1.3", "10.244.1.1"),
					slice("default", "web", "web-3", "http", 8080, ptr.To(false), "10.244.1.9"),
					slice("default", "web", "web-4", "metrics", 9090, nil, "10.244.1.8"),
				}},
			wantHosts: []snapshot.VirtualHost{{Host: "h", Routes: []snapshot.Route{{
				Path: "/", PathType: snapshot.PathExact, Source: "default/a",
				Backend: snapshot.Backend{Name: "default/web:80", Endpoints: []string{"10.244.1.1:8080", "10.244.1.3:8080"}}}}}},
			wantResults: []Result{{Ingress: nn("default", "a"), Accepted: true, Reason: ReasonAccepted}},
		},
		"missing Service is a warning and an empty backend, not a rejection": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{ingress("default", "a", "portico", 1, "h", path{"/", prefix, "gone", port80})}},
			wantHosts: []snapshot.VirtualHost{{Host: "h", Routes: []snapshot.Route{{
				Path: "/", PathType: snapshot.PathPrefix, Source: "default/a", Backend: snapshot.Backend{Name: "default/gone:80"}}}}},
			wantResults: []Result{{Ingress: nn("default", "a"), Accepted: true, Reason: ReasonAccepted, Warnings: []Warning{{ReasonServiceNotFound,
				"spec.rules[0].http.paths[0].backend: Service default/gone not found; the route answers 503 until it exists"}}}},
		},
		"a bad Ingress is rejected alone; its neighbour ships": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{
					ingress("default", "bad", "portico", 1, "bad_host!", path{"/", prefix, "web", port80}),
					ingress("default", "good", "portico", 1, "good", path{"/", prefix, "web", port80}),
				},
				Services: []corev1.Service{web}},
			wantHosts: []snapshot.VirtualHost{{Host: "good", Routes: []snapshot.Route{{
				Path: "/", PathType: snapshot.PathPrefix, Source: "default/good", Backend: snapshot.Backend{Name: "default/web:80"}}}}},
			wantResults: []Result{
				{Ingress: nn("default", "bad"), Reason: ReasonInvalidHost, Message: `spec.rules[0].host "bad_host!" is not a DNS name or one-label wildcard`},
				{Ingress: nn("default", "good"), Accepted: true, Reason: ReasonAccepted, Warnings: []Warning{{ReasonNoEndpoints,
					"spec.rules[0].http.paths[0].backend: Service default/web has no ready endpoints; the route answers 503"}}},
			},
		},
		"conflict goes to the oldest Ingress whatever the list order; precedence sorted": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{
					ingress("default", "young", "portico", 1, "h", path{"/a", prefix, "web", port80}, path{"/a/b", prefix, "web", port80}),
					ingress("default", "old", "portico", 5, "h", path{"/a", prefix, "gone", port80}, path{"/a", exact, "gone", port80}),
				},
				Services: []corev1.Service{web}},
			wantHosts: []snapshot.VirtualHost{{Host: "h", Routes: []snapshot.Route{
				{Path: "/a/b", PathType: snapshot.PathPrefix, Source: "default/young", Backend: snapshot.Backend{Name: "default/web:80"}},
				{Path: "/a", PathType: snapshot.PathExact, Source: "default/old", Backend: snapshot.Backend{Name: "default/gone:80"}},
				{Path: "/a", PathType: snapshot.PathPrefix, Source: "default/old", Backend: snapshot.Backend{Name: "default/gone:80"}},
			}}},
			wantResults: []Result{
				{Ingress: nn("default", "old"), Accepted: true, Reason: ReasonAccepted, Warnings: []Warning{
					{ReasonServiceNotFound, "spec.rules[0].http.paths[0].backend: Service default/gone not found; the route answers 503 until it exists"},
					{ReasonServiceNotFound, "spec.rules[0].http.paths[1].backend: Service default/gone not found; the route answers 503 until it exists"}}},
				{Ingress: nn("default", "young"), Accepted: true, Reason: ReasonAccepted, Warnings: []Warning{
					{ReasonNoEndpoints, "spec.rules[0].http.paths[0].backend: Service default/web has no ready endpoints; the route answers 503"},
					{ReasonNoEndpoints, "spec.rules[0].http.paths[1].backend: Service default/web has no ready endpoints; the route answers 503"},
					{ReasonRouteConflict, `host "h" path "/a" (Prefix) is already served by the older Ingress default/old; this rule is ignored`}}},
			},
		},
		"ExternalName Service resolves to its DNS name": {
			in: Inputs{Instance: "gw", IngressClasses: classes,
				Ingresses: []networkingv1.Ingress{ingress("demo", "a", "portico", 1, "h", path{"/", prefix, "ext", port80})},
				Services: []corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "ext"},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"}}}},
			wantHosts: []snapshot.VirtualHost{{Host: "h", Routes: []snapshot.Route{{
				Path: "/", PathType: snapshot.PathPrefix, Source: "demo/a", Backend: snapshot.Backend{Name: "demo/ext:80", Endpoints: []string{"localhost:80"}}}}}},
			wantResults: []Result{{Ingress: nn("demo", "a"), Accepted: true, Reason: ReasonAccepted}},
		},
		"resource backend is rejected": {
			in: Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{func() networkingv1.Ingress {
				ing := ingress("default", "r", "portico", 1, "h")
				ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}
				return ing
			}()}},
			wantResults: []Result{{Ingress: nn("default", "r"), Reason: ReasonResourceBackend,
				Message: "spec.defaultBackend: resource backends (Bucket b) are not supported; use a Service"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := Compile(tc.in)
			if diff := cmp.Diff(tc.wantHosts, out.Snapshot.Hosts); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDefault, out.Snapshot.DefaultBackend); diff != "" {
				t.Errorf("default backend (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantResults, out.Results); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if _, err := snapshot.Decode(out.Encoded); err != nil {
				t.Errorf("encoded snapshot does not decode: %v", err)
			}
		})
	}
}

// The same inputs in any order give the same bytes and version.
func TestCompileDeterministic(t *testing.T) {
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	a := ingress("ns1", "a", "portico", 2, "a.example.com", path{"/x", prefix, "web", port80})
	b := ingress("ns2", "b", "portico", 2, "b.example.com", path{"/y", exact, "web", port80})
	s1 := slice("ns1", "web", "s1", "", 80, nil, "10.0.0.2", "10.0.0.1")
	s2 := slice("ns1", "web", "s2", "", 80, nil, "10.0.0.3")
	web := service("ns1", "web", corev1.ServicePort{Port: 80})
	one := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{a, b},
		Services: []corev1.Service{web}, EndpointSlices: []discoveryv1.EndpointSlice{s1, s2}})
	two := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{b, a},
		Services: []corev1.Service{web}, EndpointSlices: []discoveryv1.EndpointSlice{s2, s1}})
	if !bytes.Equal(one.Encoded, two.Encoded) {
		t.Fatalf("encodings differ:\n%s\n%s", one.Encoded, two.Encoded)
	}
	if one.Snapshot.Version == "" || one.Snapshot.Version != two.Snapshot.Version {
		t.Fatalf("versions %q and %q", one.Snapshot.Version, two.Snapshot.Version)
	}
}

func nn(ns, name string) (n struct{ Namespace, Name string }) {
	n.Namespace, n.Name = ns, name
	return
}

// Two IngressClasses may bind one instance: Ingresses of both are served.
func TestTwoClassesOneInstance(t *testing.T) {
	out := Compile(Inputs{Instance: "gw",
		IngressClasses: []networkingv1.IngressClass{class("team-a", "gw", false), class("team-b", "gw", false), class("else", "other", false)},
		Ingresses: []networkingv1.Ingress{
			ingress("a", "x", "team-a", 1, "a.example.com", path{"/", prefix, "web", port80}),
			ingress("b", "y", "team-b", 1, "b.example.com", path{"/", prefix, "web", port80}),
			ingress("c", "z", "else", 1, "c.example.com", path{"/", prefix, "web", port80}),
		}})
	if diff := cmp.Diff([]string{"team-a", "team-b"}, out.Classes); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	var hosts []string
	for _, h := range out.Snapshot.Hosts {
		hosts = append(hosts, h.Host)
	}
	if diff := cmp.Diff([]string{"a.example.com", "b.example.com"}, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestServerAlias(t *testing.T) {
	withAlias := func(ing networkingv1.Ingress, aliases string) networkingv1.Ingress {
		ing.Annotations = map[string]string{"nginx.ingress.kubernetes.io/server-alias": aliases}
		return ing
	}
	classes := []networkingv1.IngressClass{class("portico", "gw", false)}
	out := Compile(Inputs{Instance: "gw", IngressClasses: classes, Ingresses: []networkingv1.Ingress{
		withAlias(ingress("ns", "old", "portico", 5, "shop.example.com", path{"/", prefix, "web", port80}), "Store.Example.com, taken.example.com"),
		withAlias(ingress("ns", "young", "portico", 1, "blog.example.com", path{"/", prefix, "web", port80}), "store.example.com,shop.example.com"),
		ingress("ns", "owner", "portico", 3, "taken.example.com", path{"/", prefix, "web", port80}),
	}})
	aliases := map[string][]string{}
	for _, h := range out.Snapshot.Hosts {
		aliases[h.Host] = h.Aliases
	}
	if diff := cmp.Diff(map[string][]string{"shop.example.com": {"store.example.com"}, "blog.example.com": nil, "taken.example.com": nil}, aliases); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
	var warnings []string
	for _, r := range out.Results {
		for _, w := range r.Warnings {
			if w.Reason == ReasonRouteConflict {
				warnings = append(warnings, r.Ingress.Name+": "+w.Message)
			}
		}
	}
	want := []string{
		`old: server-alias "taken.example.com" is a host of its own; it is not an alias of "shop.example.com"`,
		`young: server-alias "store.example.com" already serves host "shop.example.com"; it is not an alias of "blog.example.com"`,
		`young: server-alias "shop.example.com" is a host of its own; it is not an alias of "blog.example.com"`,
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	rt, err := router.Compile(out.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rt.Match("store.example.com", "/x"); r == nil || r.Source != "ns/old" {
		t.Errorf("store.example.com is not served like shop.example.com: %+v", r)
	}
}
