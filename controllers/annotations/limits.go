package annotations

// Limits is the limits group. Rates and connections are per client address
// and per gateway replica, as in ingress-nginx.
type Limits struct {
	RPS, RPM, Connections int
	// BurstMultiplier defaults to 5.
	BurstMultiplier int
	// BodySize is proxy-body-size in bytes; nil when unset, 0 = unlimited.
	BodySize *int64
}

// LimitsGroup reads limit-* and proxy-body-size.
var LimitsGroup = &Group[Limits]{
	Name: "limits",
	Annotations: []Annotation{
		{Name: "limit-rps", Validator: vInt(0, 1<<30), Scope: ScopeLocation, Risk: RiskLow, Doc: "Requests per second per client address."},
		{Name: "limit-rpm", Validator: vInt(0, 1<<30), Scope: ScopeLocation, Risk: RiskLow, Doc: "Requests per minute per client address."},
		{Name: "limit-connections", Validator: vInt(0, 1<<30), Scope: ScopeLocation, Risk: RiskLow, Doc: "Concurrent connections per client address."},
		{Name: "limit-burst-multiplier", Validator: vInt(1, 1000), Scope: ScopeLocation, Risk: RiskLow, Doc: "Burst = rate x multiplier; default 5."},
		{Name: "proxy-body-size", Validator: vSize, Scope: ScopeLocation, Risk: RiskMedium, Doc: "Largest request body (nginx size: 8m, 512k; 0 = unlimited); larger gets 413."},
	},
	parse: func(r *reader) (Limits, error) {
		l := Limits{
			RPS:             r.integer("limit-rps", 0),
			RPM:             r.integer("limit-rpm", 0),
			Connections:     r.integer("limit-connections", 0),
			BurstMultiplier: r.integer("limit-burst-multiplier", 0),
		}
		if v, ok, _ := r.get("proxy-body-size"); ok {
			n, _ := parseSize(v)
			l.BodySize = &n
		}
		if l.BurstMultiplier != 0 && l.RPS == 0 && l.RPM == 0 {
			r.warnf("annotation %s has no effect without limit-rps or limit-rpm", r.key("limit-burst-multiplier"))
		}
		return l, nil
	},
}
