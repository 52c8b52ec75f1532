package annotations

import "strings"

// Rewrite is the rewrite group.
type Rewrite struct {
	// Target replaces the whole upstream path; $1..$9 are the capture groups
	// of the path (see snapshot.Rewrite). Empty means no rewrite.
	Target string
	// UseRegex makes the Ingress's ImplementationSpecific paths regular
	// expressions. rewrite-target implies it, as in ingress-nginx.
	UseRegex bool
	// AppRoot redirects "/" to this path (302).
	AppRoot string
	// ForwardedPrefix is sent as X-Forwarded-Prefix when a rewrite happens.
	ForwardedPrefix string
}

// RewriteGroup reads rewrite-target, use-regex, app-root and x-forwarded-prefix.
var RewriteGroup = &Group[Rewrite]{
	Name: "rewrite",
	Annotations: []Annotation{
		{Name: "rewrite-target", Validator: vRewriteTarget, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Replaces the upstream path; $1..$9 are the path's regex capture groups. Implies use-regex for this Ingress."},
		{Name: "use-regex", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "ImplementationSpecific paths of this Ingress are RE2 regular expressions, anchored at the start, case-insensitive."},
		{Name: "app-root", Validator: vPath, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Redirects the path / to this path with 302."},
		{Name: "x-forwarded-prefix", Validator: vPath, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Value of the X-Forwarded-Prefix header sent upstream when the path is rewritten."},
	},
	parse: func(r *reader) (Rewrite, error) {
		rw := Rewrite{
			Target:          r.str("rewrite-target"),
			UseRegex:        r.boolean("use-regex", false),
			AppRoot:         r.str("app-root"),
			ForwardedPrefix: strings.TrimSpace(r.str("x-forwarded-prefix")),
		}
		if rw.Target != "" {
			rw.UseRegex = true
		}
		if rw.ForwardedPrefix != "" && rw.Target == "" {
			r.warnf("annotation %s has no effect without rewrite-target", r.key("x-forwarded-prefix"))
		}
		return rw, nil
	},
}
