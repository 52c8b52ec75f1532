// Package compile translates Kubernetes objects (Ingresses, IngressClasses,
// Services, EndpointSlices) into one gateway instance's snapshot, plus one
// Result per Ingress. It is pure: no client, no context, no clock, so the
// same Inputs always give the same bytes, and every case is a table test.
package compile

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Annotations that select an IngressClass the legacy way and mark a default class.
const (
	legacyClassAnnotation  = "kubernetes.io/ingress.class"
	defaultClassAnnotation = networkingv1.AnnotationIsDefaultIngressClass
)

// Inputs is everything the compiler reads. The slices may hold objects that
// do not concern the instance; Compile selects what it needs.
type Inputs struct {
	// Instance is the GatewayConfig name the snapshot is for.
	Instance string
	// IngressClasses are all IngressClasses in the cluster.
	IngressClasses []networkingv1.IngressClass
	// Ingresses are all Ingresses the instance may serve.
	Ingresses []networkingv1.Ingress
	// Services and EndpointSlices resolve Ingress backends.
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
}

// Result is the outcome for one Ingress of a bound class.
type Result struct {
	// Ingress names the object.
	Ingress types.NamespacedName
	// Accepted is true when the Ingress is in the snapshot.
	Accepted bool
	// Reason is a CamelCase word for Events: Accepted or a rejection reason.
	Reason string
	// Message explains a rejection.
	Message string
	// Warnings are problems that did not reject the Ingress (a missing
	// Service, a route lost to an older Ingress); each becomes an Event.
	Warnings []Warning
}

// Warning is a non-fatal problem found while compiling an Ingress.
type Warning struct {
	// Reason is a CamelCase word for the Event.
	Reason string
	// Message says what is wrong and what happens meanwhile.
	Message string
}

// Reasons used in Results and Warnings.
const (
	ReasonAccepted        = "Accepted"
	ReasonInvalidHost     = "InvalidHost"
	ReasonInvalidPath     = "InvalidPath"
	ReasonResourceBackend = "UnsupportedResourceBackend"
	ReasonNoBackend       = "NoBackend"
	ReasonServiceNotFound = "ServiceNotFound"
	ReasonPortNotFound    = "ServicePortNotFound"
	ReasonNoEndpoints     = "NoReadyEndpoints"
	ReasonRouteConflict   = "RouteConflict"
)

// Output is what Compile produces.
type Output struct {
	// Snapshot is sealed: Version is set.
	Snapshot *snapshot.Snapshot
	// Encoded is the canonical encoding of Snapshot, ready for the ConfigMap.
	Encoded []byte
	// Classes are the names of the IngressClasses bound to the instance, sorted.
	Classes []string
	// Results has one entry per Ingress of a bound class, sorted by namespace/name.
	Results []Result
}

// BoundClasses returns the names of the IngressClasses whose controller is
// Portico and whose parameters name the instance, sorted, and whether one of
// them is the cluster default.
func BoundClasses(instance string, classes []networkingv1.IngressClass) (names []string, isDefault bool) {
	for i := range classes {
		c := &classes[i]
		if c.Spec.Controller != gatewayv1alpha1.ControllerName || c.Spec.Parameters == nil {
			continue
		}
		p := c.Spec.Parameters
		if p.APIGroup == nil || *p.APIGroup != gatewayv1alpha1.GroupVersion.Group || p.Kind != "GatewayConfig" || p.Name != instance {
			continue
		}
		names = append(names, c.Name)
		if c.Annotations[defaultClassAnnotation] == "true" {
			isDefault = true
		}
	}
	slices.Sort(names)
	return names, isDefault
}

// ClassOf returns the IngressClass name an Ingress asks for: spec.ingressClassName,
// else the legacy annotation, else "" (the default class).
func ClassOf(ing *networkingv1.Ingress) string {
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	return ing.Annotations[legacyClassAnnotation]
}

// Compile builds the instance's snapshot.
func Compile(in Inputs) Output {
	classes, isDefault := BoundClasses(in.Instance, in.IngressClasses)
	idx := newIndex(in.Services, in.EndpointSlices)

	// Oldest first, then namespace/name: the order decides conflicts, so it
	// must not depend on list order.
	var ings []*networkingv1.Ingress
	for i := range in.Ingresses {
		ing := &in.Ingresses[i]
		class := ClassOf(ing)
		if (class == "" && isDefault) || slices.Contains(classes, class) {
			ings = append(ings, ing)
		}
	}
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})

	hosts := map[string]*snapshot.VirtualHost{}
	owner := map[routeKey]string{} // which Ingress won a host+path+type
	var defaultBackend *snapshot.Backend
	results := make([]Result, 0, len(ings))
	for _, ing := range ings {
		res := Result{Ingress: types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}}
		routes, def, err := translate(ing, idx, &res)
		if err != nil {
			res.Reason, res.Message = err.reason, err.message
			results = append(results, res)
			continue
		}
		res.Accepted, res.Reason = true, ReasonAccepted
		src := ing.Namespace + "/" + ing.Name
		for _, hr := range routes {
			k := routeKey{hr.host, hr.route.Path, hr.route.PathType}
			if prev, taken := owner[k]; taken {
				res.Warnings = append(res.Warnings, Warning{ReasonRouteConflict, fmt.Sprintf(
					"host %q path %q (%s) is already served by the older Ingress %s; this rule is ignored",
					displayHost(hr.host), hr.route.Path, hr.route.PathType, prev)})
				continue
			}
			owner[k] = src
			vh := hosts[hr.host]
			if vh == nil {
				vh = &snapshot.VirtualHost{Host: hr.host}
				hosts[hr.host] = vh
			}
			hr.route.Source = src
			vh.Routes = append(vh.Routes, hr.route)
		}
		if def != nil {
			if defaultBackend == nil {
				defaultBackend = def
			} else {
				res.Warnings = append(res.Warnings, Warning{ReasonRouteConflict,
					"spec.defaultBackend is ignored: an older Ingress already sets the instance's default backend"})
			}
		}
		results = append(results, res)
	}

	snap := &snapshot.Snapshot{DefaultBackend: defaultBackend}
	for _, vh := range hosts {
		slices.SortFunc(vh.Routes, routeOrder)
		snap.Hosts = append(snap.Hosts, *vh)
	}
	slices.SortFunc(snap.Hosts, func(a, b snapshot.VirtualHost) int { return strings.Compare(a.Host, b.Host) })
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(strings.Compare(a.Ingress.Namespace, b.Ingress.Namespace), strings.Compare(a.Ingress.Name, b.Ingress.Name))
	})
	enc := snapshot.Seal(snap)
	return Output{Snapshot: snap, Encoded: enc, Classes: classes, Results: results}
}

// routeOrder puts longer paths first and Exact before Prefix on equal length,
// which is the Ingress precedence; the path itself breaks remaining ties.
func routeOrder(a, b snapshot.Route) int {
	if len(a.Path) != len(b.Path) {
		return len(b.Path) - len(a.Path)
	}
	if a.PathType != b.PathType {
		if a.PathType == snapshot.PathExact {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Path, b.Path)
}

type routeKey struct {
	host, path string
	pathType   snapshot.PathType
}

type hostRoute struct {
	host  string
	route snapshot.Route
}

type rejection struct{ reason, message string }

func displayHost(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// translate turns one Ingress into routes. A rejection means the whole
// Ingress is left out, so a half-valid Ingress never ships half its rules.
func translate(ing *networkingv1.Ingress, idx *index, res *Result) ([]hostRoute, *snapshot.Backend, *rejection) {
	var out []hostRoute
	for i, rule := range ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if host != "" {
			check := strings.TrimPrefix(host, "*.")
			if errs := validation.IsDNS1123Subdomain(check); len(errs) > 0 || net.ParseIP(host) != nil {
				return nil, nil, &rejection{ReasonInvalidHost, fmt.Sprintf("spec.rules[%d].host %q is not a DNS name or one-label wildcard", i, rule.Host)}
			}
		}
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			where := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			path := p.Path
			if path == "" {
				path = "/"
			}
			if !strings.HasPrefix(path, "/") {
				return nil, nil, &rejection{ReasonInvalidPath, fmt.Sprintf("%s.path %q must start with '/'", where, p.Path)}
			}
			pt := snapshot.PathPrefix // ImplementationSpecific is Prefix matching here
			if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
				pt = snapshot.PathExact
			}
			if pt == snapshot.PathPrefix && len(path) > 1 {
				path = strings.TrimRight(path, "/")
				if path == "" {
					path = "/"
				}
			}
			b, rej := idx.backend(ing.Namespace, &p.Backend, where+".backend", res)
			if rej != nil {
				return nil, nil, rej
			}
			out = append(out, hostRoute{host, snapshot.Route{Path: path, PathType: pt, Backend: *b}})
		}
	}
	var def *snapshot.Backend
	if ing.Spec.DefaultBackend != nil {
		b, rej := idx.backend(ing.Namespace, ing.Spec.DefaultBackend, "spec.defaultBackend", res)
		if rej != nil {
			return nil, nil, rej
		}
		def = b
	}
	return out, def, nil
}

// index looks Services and their EndpointSlices up by namespace/name.
type index struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
}

func newIndex(svcs []corev1.Service, eps []discoveryv1.EndpointSlice) *index {
	idx := &index{services: map[types.NamespacedName]*corev1.Service{}, slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}}
	for i := range svcs {
		idx.services[types.NamespacedName{Namespace: svcs[i].Namespace, Name: svcs[i].Name}] = &svcs[i]
	}
	for i := range eps {
		svc := eps[i].Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := types.NamespacedName{Namespace: eps[i].Namespace, Name: svc}
		idx.slices[k] = append(idx.slices[k], &eps[i])
	}
	return idx
}

// backend resolves an IngressBackend. A missing Service or endpoint is a
// warning (the route answers 503 until it appears), not a rejection.
func (idx *index) backend(ns string, ib *networkingv1.IngressBackend, where string, res *Result) (*snapshot.Backend, *rejection) {
	if ib.Resource != nil {
		return nil, &rejection{ReasonResourceBackend, fmt.Sprintf("%s: resource backends (%s %s) are not supported; use a Service", where, ib.Resource.Kind, ib.Resource.Name)}
	}
	if ib.Service == nil {
		return nil, &rejection{ReasonNoBackend, where + ": a service backend is required"}
	}
	ref := ib.Service
	portText := ref.Port.Name
	if portText == "" {
		portText = strconv.Itoa(int(ref.Port.Number))
	}
	b := &snapshot.Backend{Name: fmt.Sprintf("%s/%s:%s", ns, ref.Name, portText)}
	svc := idx.services[types.NamespacedName{Namespace: ns, Name: ref.Name}]
	if svc == nil {
		res.Warnings = append(res.Warnings, Warning{ReasonServiceNotFound, fmt.Sprintf("%s: Service %s/%s not found; the route answers 503 until it exists", where, ns, ref.Name)})
		return b, nil
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (ref.Port.Name != "" && p.Name == ref.Port.Name) || (ref.Port.Name == "" && p.Port == ref.Port.Number) {
			sp = p
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		port := ref.Port.Number
		if sp != nil {
			port = sp.Port
		}
		if port == 0 {
			res.Warnings = append(res.Warnings, Warning{ReasonPortNotFound, fmt.Sprintf("%s: ExternalName Service %s/%s has no port %q", where, ns, ref.Name, portText)})
			return b, nil
		}
		b.Endpoints = []string{net.JoinHostPort(strings.TrimSuffix(svc.Spec.ExternalName, "."), strconv.Itoa(int(port)))}
		return b, nil
	}
	if sp == nil {
		res.Warnings = append(res.Warnings, Warning{ReasonPortNotFound, fmt.Sprintf("%s: Service %s/%s has no port %q; the route answers 503", where, ns, ref.Name, portText)})
		return b, nil
	}
	b.Endpoints = idx.endpoints(types.NamespacedName{Namespace: ns, Name: ref.Name}, sp.Name)
	if len(b.Endpoints) == 0 {
		res.Warnings = append(res.Warnings, Warning{ReasonNoEndpoints, fmt.Sprintf("%s: Service %s/%s has no ready endpoints; the route answers 503", where, ns, ref.Name)})
	}
	return b, nil
}

// endpoints merges all slices of a Service, keeps ready endpoints of the
// port named portName, and returns sorted, de-duplicated "ip:port" strings.
func (idx *index) endpoints(svc types.NamespacedName, portName string) []string {
	set := map[string]struct{}{}
	for _, s := range idx.slices[svc] {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue // nil means ready
			}
			for _, a := range ep.Addresses {
				set[net.JoinHostPort(a, strconv.Itoa(int(port)))] = struct{}{}
			}
		}
	}
	var out []string // nil when empty, so "no endpoints" has one encoding
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}
