package annotations

import (
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// ingress-nginx's CORS defaults.
const (
	defaultCORSMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	defaultCORSHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	defaultCORSMaxAge  = 1728000
)

// CORS is the CORS group.
type CORS struct {
	// Enabled is enable-cors; the other fields hold ingress-nginx's defaults
	// when their annotation is absent.
	Enabled          bool
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	AllowCredentials bool
	MaxAgeSeconds    int
}

func vOrigin(v string) error { return snapshot.ValidOrigin(strings.TrimSpace(v)) }

func vMethod(v string) error {
	if err := vToken(v); err != nil {
		return err
	}
	return nil
}

func vHeaderName(v string) error {
	if v == "*" {
		return nil
	}
	return vToken(v)
}

// CORSGroup reads enable-cors and cors-*.
var CORSGroup = &Group[CORS]{
	Name: "cors",
	Annotations: []Annotation{
		{Name: "enable-cors", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow, Doc: "Enables CORS handling."},
		{Name: "cors-allow-origin", Validator: vList(vOrigin), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: `Comma-separated origins ("*", "https://a.com", "https://*.a.com"); default "*".`},
		{Name: "cors-allow-methods", Validator: vList(vMethod), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Comma-separated methods; default GET, PUT, POST, DELETE, PATCH, OPTIONS."},
		{Name: "cors-allow-headers", Validator: vList(vHeaderName), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Comma-separated request headers allowed; ingress-nginx's default list."},
		{Name: "cors-expose-headers", Validator: vList(vHeaderName), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Comma-separated response headers exposed; default none."},
		{Name: "cors-allow-credentials", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow, Doc: "Default true."},
		{Name: "cors-max-age", Validator: vInt(0, 1<<31-1), Scope: ScopeLocation, Risk: RiskLow, Doc: "Preflight cache seconds; default 1728000."},
	},
	parse: func(r *reader) (CORS, error) {
		c := CORS{Enabled: r.boolean("enable-cors", false)}
		if !c.Enabled {
			for _, n := range []string{"cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-expose-headers", "cors-allow-credentials", "cors-max-age"} {
				if r.has(n) {
					r.warnf("annotation %s has no effect without enable-cors", r.key(n))
				}
			}
			return c, nil
		}
		list := func(name, def string) []string {
			v, ok, _ := r.get(name)
			if !ok {
				v = def
			}
			return splitList(v)
		}
		c.AllowOrigins = list("cors-allow-origin", "*")
		c.AllowMethods = list("cors-allow-methods", defaultCORSMethods)
		for i, m := range c.AllowMethods {
			c.AllowMethods[i] = strings.ToUpper(m)
		}
		c.AllowHeaders = list("cors-allow-headers", defaultCORSHeaders)
		c.ExposeHeaders = list("cors-expose-headers", "")
		c.AllowCredentials = r.boolean("cors-allow-credentials", true)
		c.MaxAgeSeconds = r.integer("cors-max-age", defaultCORSMaxAge)
		return c, nil
	},
}
