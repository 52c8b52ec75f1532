package annotations

import (
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Balancer is the load-balancing group. A canary Ingress keeps its own.
type Balancer struct {
	// Policy is round_robin, ewma or least_conn; "" when unset.
	Policy string
	// HashBy is a whitelisted request value (snapshot.ValidHashBy).
	HashBy string
	// Affinity is set by affinity: cookie.
	Affinity *snapshot.Affinity
}

// defaultAffinityCookie is ingress-nginx's session-cookie-name default.
const defaultAffinityCookie = "INGRESSCOOKIE"

// BalancerGroup reads load-balance, upstream-hash-by and the affinity annotations.
var BalancerGroup = &Group[Balancer]{
	Name: "balancer",
	Annotations: []Annotation{
		{Name: "load-balance", Validator: vEnum(snapshot.BalanceRoundRobin, snapshot.BalanceEWMA, snapshot.BalanceLeastConn), Scope: ScopeLocation, Risk: RiskLow,
			Doc: "round_robin, ewma (least latency, power of two choices) or least_conn."},
		{Name: "upstream-hash-by", Validator: func(v string) error { return snapshot.ValidHashBy(strings.TrimSpace(v)) }, Scope: ScopeLocation, Risk: RiskHigh,
			Doc: "Consistent hashing on $request_uri, $uri, $host, $remote_addr, $http_<name>, $cookie_<name> or $arg_<name>; free expressions are refused."},
		{Name: "affinity", Validator: vEnum("cookie"), Scope: ScopeLocation, Risk: RiskLow, Doc: "cookie: pin clients to an endpoint."},
		{Name: "affinity-mode", Validator: vEnum("balanced", "persistent"), Scope: ScopeLocation, Risk: RiskMedium, Doc: "balanced (default) or persistent."},
		{Name: "affinity-canary-behavior", Validator: vEnum("sticky", "legacy"), Scope: ScopeLocation, Risk: RiskLow, Doc: "sticky (default) keeps canary clients on the canary."},
		{Name: "session-cookie-name", Validator: vToken, Scope: ScopeLocation, Risk: RiskMedium, Doc: "Default INGRESSCOOKIE."},
		{Name: "session-cookie-path", Validator: vPath, Scope: ScopeLocation, Risk: RiskMedium, Doc: "Cookie Path attribute."},
		{Name: "session-cookie-domain", Validator: vHost, Scope: ScopeLocation, Risk: RiskMedium, Doc: "Cookie Domain attribute."},
		{Name: "session-cookie-expires", Validator: vInt(0, 1<<31-1), Scope: ScopeLocation, Risk: RiskLow, Doc: "Cookie lifetime in seconds (Expires)."},
		{Name: "session-cookie-max-age", Validator: vInt(0, 1<<31-1), Scope: ScopeLocation, Risk: RiskLow, Doc: "Cookie Max-Age in seconds."},
		{Name: "session-cookie-samesite", Validator: vEnum("None", "Lax", "Strict"), Scope: ScopeLocation, Risk: RiskLow, Doc: "Cookie SameSite attribute."},
		{Name: "session-cookie-secure", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow, Doc: "Cookie Secure attribute."},
		{Name: "session-cookie-change-on-failure", Validator: vBool, Scope: ScopeLocation, Risk: RiskLow, Doc: "Re-pin the client when its endpoint fails."},
	},
	parse: func(r *reader) (Balancer, error) {
		b := Balancer{Policy: r.str("load-balance"), HashBy: r.str("upstream-hash-by")}
		if r.str("affinity") == "cookie" {
			b.Affinity = &snapshot.Affinity{
				Mode:            r.str("affinity-mode"),
				Cookie:          r.str("session-cookie-name"),
				Path:            r.str("session-cookie-path"),
				Domain:          strings.ToLower(r.str("session-cookie-domain")),
				SameSite:        r.str("session-cookie-samesite"),
				ExpiresSeconds:  r.integer("session-cookie-expires", 0),
				MaxAgeSeconds:   r.integer("session-cookie-max-age", 0),
				Secure:          r.boolean("session-cookie-secure", false),
				ChangeOnFailure: r.boolean("session-cookie-change-on-failure", false),
				CanaryBehavior:  r.str("affinity-canary-behavior"),
			}
			if b.Affinity.Cookie == "" {
				b.Affinity.Cookie = defaultAffinityCookie
			}
			if b.HashBy != "" {
				r.warnf("annotation %s is ignored: cookie affinity decides the endpoint", r.key("upstream-hash-by"))
				b.HashBy = ""
			}
		} else {
			for _, n := range []string{"affinity-mode", "affinity-canary-behavior", "session-cookie-name", "session-cookie-path", "session-cookie-domain",
				"session-cookie-expires", "session-cookie-max-age", "session-cookie-samesite", "session-cookie-secure", "session-cookie-change-on-failure"} {
				if r.has(n) {
					r.warnf("annotation %s has no effect without affinity: cookie", r.key(n))
				}
			}
		}
		if b.HashBy != "" && b.Policy != "" {
			r.warnf("annotation %s is ignored: upstream-hash-by decides the endpoint", r.key("load-balance"))
			b.Policy = ""
		}
		return b, nil
	},
}
