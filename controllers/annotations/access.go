package annotations

import (
	"net/netip"
	"slices"
)

// Access is the source-range group.
type Access struct {
	// Allow (allowlist-source-range, alias whitelist-source-range) and Deny
	// (denylist-source-range) are masked prefixes, sorted and de-duplicated.
	Allow []netip.Prefix
	Deny  []netip.Prefix
}

// AccessGroup reads the source-range annotations.
var AccessGroup = &Group[Access]{
	Name: "access",
	Annotations: []Annotation{
		{Name: "allowlist-source-range", Validator: vList(vCIDR), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Comma-separated CIDRs (or addresses) allowed; others get 403."},
		{Name: "whitelist-source-range", Validator: vList(vCIDR), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Former name of allowlist-source-range; allowlist-source-range wins when both are set."},
		{Name: "denylist-source-range", Validator: vList(vCIDR), Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Comma-separated CIDRs (or addresses) refused with 403; checked before the allow list."},
	},
	parse: func(r *reader) (Access, error) {
		var a Access
		allow := "allowlist-source-range"
		if !r.has(allow) {
			allow = "whitelist-source-range"
		} else if r.has("whitelist-source-range") {
			r.warnf("annotation %s is ignored: allowlist-source-range is set", r.key("whitelist-source-range"))
		}
		a.Allow = prefixes(r.str(allow))
		a.Deny = prefixes(r.str("denylist-source-range"))
		return a, nil
	},
}

func prefixes(v string) []netip.Prefix {
	var out []netip.Prefix
	for _, it := range splitList(v) {
		if p, err := parseCIDR(it); err == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}
