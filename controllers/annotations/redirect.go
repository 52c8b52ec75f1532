package annotations

import (
	"net/http"
	"strings"
)

// Redirect is the redirect group.
type Redirect struct {
	// SSLRedirect is ssl-redirect; nil means the default (true when the
	// Ingress has TLS for the host).
	SSLRedirect *bool
	// ForceSSLRedirect redirects to https even without TLS in the Ingress.
	ForceSSLRedirect bool
	// URL and Code: temporal-redirect (302) or permanent-redirect (301);
	// temporal wins when both are set, as in ingress-nginx.
	URL  string
	Code int
	// FromToWWW redirects between host and www.host (308).
	FromToWWW bool
	// Aliases are server-alias: further exact host names served exactly
	// like each rule host of the Ingress, lower-cased.
	Aliases []string
}

// RedirectGroup reads the redirect annotations.
var RedirectGroup = &Group[Redirect]{
	Name: "redirect",
	Annotations: []Annotation{
		{Name: "ssl-redirect", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Redirects plain HTTP to HTTPS with 308; default true when the Ingress has TLS for the host."},
		{Name: "force-ssl-redirect", Validator: vBool, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Redirects plain HTTP to HTTPS with 308 even without TLS in the Ingress."},
		{Name: "permanent-redirect", Validator: vURL, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Answers every request with a redirect to this absolute URL (301 by default)."},
		{Name: "permanent-redirect-code", Validator: vInt(300, 308), Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Status code of permanent-redirect, 300..308."},
		{Name: "temporal-redirect", Validator: vURL, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Answers every request with a redirect to this absolute URL (302 by default); wins over permanent-redirect."},
		{Name: "temporal-redirect-code", Validator: vInt(300, 307), Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Status code of temporal-redirect, 300..307."},
		{Name: "from-to-www-redirect", Validator: vBool, Scope: ScopeHost, Risk: RiskLow,
			Doc: "Redirects www.host to host, or host to www.host, whichever the rule does not name (308)."},
		{Name: "server-alias", Validator: vList(vHost), Scope: ScopeHost, Risk: RiskLow,
			Doc: "Comma-separated exact host names served exactly like the Ingress's first exact rule host; a name that is a host of its own, or already an alias, is not taken over (warning)."},
	},
	parse: func(r *reader) (Redirect, error) {
		rd := Redirect{
			ForceSSLRedirect: r.boolean("force-ssl-redirect", false),
			FromToWWW:        r.boolean("from-to-www-redirect", false),
		}
		for _, a := range splitList(r.str("server-alias")) {
			rd.Aliases = append(rd.Aliases, strings.ToLower(a))
		}
		if r.has("ssl-redirect") {
			b := r.boolean("ssl-redirect", true)
			rd.SSLRedirect = &b
		}
		if u := r.str("temporal-redirect"); u != "" {
			rd.URL, rd.Code = u, r.integer("temporal-redirect-code", http.StatusFound)
			if r.has("permanent-redirect") {
				r.warnf("annotation %s is ignored: temporal-redirect wins, as in ingress-nginx", r.key("permanent-redirect"))
			}
		} else if u := r.str("permanent-redirect"); u != "" {
			rd.URL, rd.Code = u, r.integer("permanent-redirect-code", http.StatusMovedPermanently)
		}
		if rd.URL == "" {
			for _, n := range []string{"permanent-redirect-code", "temporal-redirect-code"} {
				if r.has(n) {
					r.warnf("annotation %s has no effect without its redirect URL", r.key(n))
				}
			}
		}
		return rd, nil
	},
}
