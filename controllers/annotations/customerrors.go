package annotations

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// CustomErrors is the custom-http-errors / default-backend group.
type CustomErrors struct {
	// Codes are the upstream status codes (400..599) answered by the error
	// backend instead, sorted and unique; nil when unset.
	Codes []int
	// DefaultBackend names a Service of the Ingress's namespace: the error
	// backend, and the backend of routes whose Service has no endpoints.
	DefaultBackend string
}

// CustomErrorsGroup reads custom-http-errors and default-backend.
var CustomErrorsGroup = &Group[CustomErrors]{
	Name: "custom-errors",
	Annotations: []Annotation{
		{Name: "custom-http-errors", Validator: vList(vInt(400, 599)), Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Comma-separated status codes (400-599): when the upstream (or the gateway itself) answers one of them, the client gets the body of the default-backend Service (else the instance's default backend) with the original status. The error backend receives X-Code, X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port and X-Request-ID."},
		{Name: "default-backend", Validator: vServiceName, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Name of a Service in the Ingress's namespace (its first port): serves custom-http-errors, and the routes whose Service has no ready endpoints."},
	},
	parse: func(r *reader) (CustomErrors, error) {
		var c CustomErrors
		for _, it := range splitList(r.str("custom-http-errors")) {
			n, _ := strconv.Atoi(it)
			c.Codes = append(c.Codes, n)
		}
		slices.Sort(c.Codes)
		c.Codes = slices.Compact(c.Codes)
		c.DefaultBackend = r.str("default-backend")
		return c, nil
	},
}

func vServiceName(v string) error {
	if len(validation.IsDNS1035Label(strings.TrimSpace(v))) > 0 {
		return errors.New("must be the name of a Service in the Ingress's namespace")
	}
	return nil
}

// DefaultBackendService returns the Service the default-backend annotation
// names (portico.dev/ first), or "" when unset. The controller uses it to
// wake the instance when that Service or its endpoints change.
func DefaultBackendService(m map[string]string) string {
	for _, k := range []string{PorticoPrefix + "default-backend", NginxPrefix + "default-backend"} {
		if v, ok := m[k]; ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
