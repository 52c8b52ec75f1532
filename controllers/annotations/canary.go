package annotations

import "strings"

// Canary is the canary group: this Ingress is an alternative backend for
// the routes (same host, path and path type) of a primary Ingress.
type Canary struct {
	// Enabled is canary: "true".
	Enabled bool
	// Portico is true when canary was set under portico.dev/: the route may
	// then hold several canaries, and WeightTotal is honoured as given.
	Portico bool
	// Header, HeaderValues, HeaderPattern: the header rule (see snapshot.Canary).
	Header        string
	HeaderValues  []string
	HeaderPattern string
	// Cookie and CookieValues: the cookie rule.
	Cookie       string
	CookieValues []string
	// Weight of WeightTotal (effective: ingress-nginx treats a total below
	// 100 as 100).
	Weight      int
	WeightTotal int
}

// CanaryGroup reads canary-*, with ingress-nginx's contract: a header
// "always"/"never" decides, header-value or header-pattern replace
// always/never, then the cookie "always"/"never", then the weight.
var CanaryGroup = &Group[Canary]{
	Name: "canary",
	Annotations: []Annotation{
		{Name: "canary", Validator: vBool, Scope: ScopeIngress, Risk: RiskLow,
			Doc: "Marks the Ingress as an alternative backend for the same host, path and path type of a primary Ingress."},
		{Name: "canary-by-header", Validator: vToken, Scope: ScopeIngress, Risk: RiskMedium,
			Doc: "Request header that routes to the canary: value always -> canary, never -> primary, else fall through."},
		{Name: "canary-by-header-value", Validator: vText, Scope: ScopeIngress, Risk: RiskMedium,
			Doc: "Exact header value that routes to the canary; under portico.dev/ a comma-separated list. Replaces always/never."},
		{Name: "canary-by-header-pattern", Validator: vRegex, Scope: ScopeIngress, Risk: RiskMedium,
			Doc: "Unanchored RE2 regular expression on the header value; ignored when canary-by-header-value is set."},
		{Name: "canary-by-cookie", Validator: vToken, Scope: ScopeIngress, Risk: RiskMedium,
			Doc: "Cookie that routes to the canary: always -> canary, never -> primary (weight skipped), else fall through."},
		{Name: "canary-by-cookie-value", Validator: vList(vText), Scope: ScopeIngress, Risk: RiskMedium, PorticoOnly: true,
			Doc: "Comma-separated cookie values that route to the canary, replacing always/never."},
		{Name: "canary-weight", Validator: vInt(0, 1_000_000), Scope: ScopeIngress, Risk: RiskLow,
			Doc: "Share of the remaining requests, out of canary-weight-total, sent to the canary."},
		{Name: "canary-weight-total", Validator: vInt(1, 1_000_000), Scope: ScopeIngress, Risk: RiskLow,
			Doc: "Divisor of canary-weight, default 100; ingress-nginx (and the nginx prefix here) treats values below 100 as 100."},
	},
	parse: parseCanary,
}

// canaryOptions are the canary annotations that need canary: "true".
var canaryOptions = []string{"canary-by-header", "canary-by-header-value", "canary-by-header-pattern",
	"canary-by-cookie", "canary-by-cookie-value", "canary-weight", "canary-weight-total"}

func parseCanary(r *reader) (Canary, error) {
	var c Canary
	v, ok, portico := r.get("canary")
	c.Enabled = ok && r.boolean("canary", false)
	c.Portico = portico
	if !c.Enabled {
		for _, name := range canaryOptions {
			if r.has(name) {
				return Canary{}, r.errorf(name, ReasonInvalidAnnotation, "configured but canary is not enabled (canary: %q)", v)
			}
		}
		return c, nil
	}
	c.Header = r.str("canary-by-header")
	if val, ok, portico := r.get("canary-by-header-value"); ok {
		if c.Header == "" {
			return Canary{}, r.errorf("canary-by-header-value", ReasonInvalidAnnotation, "needs canary-by-header")
		}
		if portico {
			c.HeaderValues = splitList(val)
		} else {
			c.HeaderValues = []string{val}
		}
		if len(c.HeaderValues) == 0 || c.HeaderValues[0] == "" {
			return Canary{}, r.errorf("canary-by-header-value", ReasonInvalidAnnotation, "is empty")
		}
		if r.has("canary-by-header-pattern") {
			r.warnf("annotation %s is ignored: canary-by-header-value is set", r.key("canary-by-header-pattern"))
		}
	} else if val, ok, _ := r.get("canary-by-header-pattern"); ok {
		if c.Header == "" {
			return Canary{}, r.errorf("canary-by-header-pattern", ReasonInvalidAnnotation, "needs canary-by-header")
		}
		c.HeaderPattern = val
	}
	c.Cookie = r.str("canary-by-cookie")
	if val, ok, _ := r.get("canary-by-cookie-value"); ok {
		if c.Cookie == "" {
			return Canary{}, r.errorf("canary-by-cookie-value", ReasonInvalidAnnotation, "needs canary-by-cookie")
		}
		c.CookieValues = splitList(val)
	}
	c.WeightTotal = 100
	declared := 100
	if _, ok, portico := r.get("canary-weight-total"); ok {
		declared = r.integer("canary-weight-total", 100)
		switch {
		case portico:
			c.WeightTotal = declared
		case declared > 100:
			c.WeightTotal = declared
		case declared < 100:
			r.warnf("annotation %s: %d is treated as 100, as ingress-nginx does; use portico.dev/canary-weight-total for a smaller total",
				r.key("canary-weight-total"), declared)
		}
	}
	c.Weight = r.integer("canary-weight", 0)
	if c.Weight > declared {
		return Canary{}, r.errorf("canary-weight", ReasonInvalidAnnotation, "weight %d is above canary-weight-total %d", c.Weight, declared)
	}
	if c.Header != "" && strings.EqualFold(c.Header, "cookie") {
		return Canary{}, r.errorf("canary-by-header", ReasonInvalidAnnotation, "use canary-by-cookie for cookies")
	}
	return c, nil
}
