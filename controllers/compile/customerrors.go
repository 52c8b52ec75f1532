package compile

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// ReasonDefaultBackendFallback: a route's Service has no ready endpoints and
// the default-backend annotation's Service serves the route meanwhile.
const ReasonDefaultBackendFallback = "DefaultBackendFallback"

// applyCustomErrors applies custom-http-errors and default-backend to the
// routes of a primary Ingress (canaries take their primary's): the listed
// codes are answered by the default-backend Service (nil Backend: the
// instance's default backend), and a route whose Service has no ready
// endpoints goes to the default-backend Service when that has some, as
// ingress-nginx does. A default-backend Service that cannot be resolved is
// a warning; the route keeps its own backend.
func applyCustomErrors(c *compiled, idx *index) {
	ce := c.cfg.CustomErrors
	if c.cfg.Canary.Enabled || len(ce.Codes) == 0 && ce.DefaultBackend == "" {
		return
	}
	var def *snapshot.Backend
	if ce.DefaultBackend != "" {
		def = idx.firstPortBackend(c.ing.Namespace, ce.DefaultBackend, c.res)
	}
	var errs *snapshot.CustomErrors
	if len(ce.Codes) > 0 {
		errs = &snapshot.CustomErrors{Codes: ce.Codes, Backend: def}
	}
	for i := range c.routes {
		r := &c.routes[i].route
		r.CustomErrors = errs
		if def != nil && len(r.Backend.Endpoints) == 0 && len(def.Endpoints) > 0 {
			c.res.Warnings = append(c.res.Warnings, Warning{ReasonDefaultBackendFallback, fmt.Sprintf(
				"host %q path %q: %s has no ready endpoints; the default-backend Service %s serves the route meanwhile",
				displayHost(c.routes[i].host), r.Path, r.Backend.Name, def.Name)})
			r.Backend = *def
		}
	}
}

// firstPortBackend resolves the first port of the Service ns/name (what
// ingress-nginx uses for default-backend). Nil, with a warning, when the
// Service or its port is missing.
func (idx *index) firstPortBackend(ns, name string, res *Result) *snapshot.Backend {
	svc := idx.services[types.NamespacedName{Namespace: ns, Name: name}]
	where := "annotation default-backend"
	if svc == nil {
		res.Warnings = append(res.Warnings, Warning{ReasonServiceNotFound, fmt.Sprintf(
			"%s: Service %s/%s not found; error pages come from the instance's default backend", where, ns, name)})
		return nil
	}
	if len(svc.Spec.Ports) == 0 {
		res.Warnings = append(res.Warnings, Warning{ReasonPortNotFound, fmt.Sprintf(
			"%s: Service %s/%s has no port; error pages come from the instance's default backend", where, ns, name)})
		return nil
	}
	ib := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name,
		Port: networkingv1.ServiceBackendPort{Number: svc.Spec.Ports[0].Port}}}
	b, rej := idx.backend(ns, &ib, where, res)
	if rej != nil {
		return nil
	}
	return b
}
