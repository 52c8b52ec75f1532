package snapshot

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validate checks everything gatewaypod relies on, and returns all problems
// joined, so a corrupt snapshot is refused whole before any of it is used.
func (s *Snapshot) Validate() error {
	var errs []error
	if s.SchemaVersion != SchemaVersion {
		errs = append(errs, fmt.Errorf("schemaVersion %d is not supported (want %d)", s.SchemaVersion, SchemaVersion))
	}
	if want := Hash(s); s.Version != want {
		errs = append(errs, fmt.Errorf("version %q does not match content hash %q", s.Version, want))
	}
	seen := map[string]bool{}
	for i := range s.Hosts {
		vh := &s.Hosts[i]
		where := fmt.Sprintf("hosts[%d]", i)
		if seen[vh.Host] {
			errs = append(errs, fmt.Errorf("%s: duplicate host %q", where, vh.Host))
		}
		seen[vh.Host] = true
		if vh.Host != "" {
			if err := ValidHost(vh.Host, true); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		for j, a := range vh.Aliases {
			if err := ValidHost(a, false); err != nil {
				errs = append(errs, fmt.Errorf("%s.aliases[%d]: %w", where, j, err))
			}
		}
		if vh.RedirectHost != "" {
			if err := ValidHost(vh.RedirectHost, false); err != nil {
				errs = append(errs, fmt.Errorf("%s.redirectHost: %w", where, err))
			}
			if len(vh.Routes) > 0 {
				errs = append(errs, fmt.Errorf("%s: a redirecting host has no routes", where))
			}
		}
		if vh.DefaultBackend != nil {
			errs = append(errs, validateBackend(where+".defaultBackend", vh.DefaultBackend)...)
		}
		if vh.ClientAuth != nil {
			errs = append(errs, validateClientAuth(where+".clientAuth", vh.ClientAuth)...)
		}
		for j := range vh.Routes {
			errs = append(errs, validateRoute(fmt.Sprintf("%s.routes[%d]", where, j), &vh.Routes[j])...)
		}
	}
	// Aliases are exact names: they must not collide with a host or another alias.
	for i := range s.Hosts {
		for _, a := range s.Hosts[i].Aliases {
			if seen[a] {
				errs = append(errs, fmt.Errorf("hosts[%d]: alias %q duplicates a host or alias", i, a))
			}
			seen[a] = true
		}
	}
	if s.DefaultBackend != nil {
		errs = append(errs, validateBackend("defaultBackend", s.DefaultBackend)...)
	}
	certHosts := map[string]bool{}
	for i := range s.Certificates {
		if s.Certificates[i].Default && i != 0 {
			errs = append(errs, fmt.Errorf("certificates[%d]: the default certificate must come first", i))
		}
		c := &s.Certificates[i]
		where := fmt.Sprintf("certificates[%d]", i)
		if ns, name, ok := strings.Cut(c.Secret, "/"); !ok || ns == "" || name == "" || strings.ContainsAny(c.Secret, "_ ") {
			errs = append(errs, fmt.Errorf("%s: secret %q is not namespace/name", where, c.Secret))
		}
		if len(c.Hash) != 16 || strings.Trim(c.Hash, "0123456789abcdef") != "" {
			errs = append(errs, fmt.Errorf("%s: hash %q is not 16 hex digits", where, c.Hash))
		}
		if len(c.Hosts) == 0 && !c.Default {
			errs = append(errs, fmt.Errorf("%s: no hosts", where))
		}
		for j, h := range c.Hosts {
			if err := ValidHost(h, true); err != nil {
				errs = append(errs, fmt.Errorf("%s.hosts[%d]: %w", where, j, err))
			}
			if certHosts[h] {
				errs = append(errs, fmt.Errorf("%s.hosts[%d]: host %q has another certificate", where, j, h))
			}
			certHosts[h] = true
		}
	}
	return errors.Join(errs...)
}

// ValidHost checks a lower-case DNS name; wildcard allows a leading "*." for
// exactly one label.
func ValidHost(h string, wildcard bool) error {
	name := h
	if wildcard {
		name = strings.TrimPrefix(h, "*.")
	}
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host %q: length must be 1..253", h)
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: not a lower-case DNS name with at most a leading '*.' wildcard", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: not a lower-case DNS name with at most a leading '*.' wildcard", h)
			}
		}
	}
	return nil
}

func validateRoute(where string, r *Route) []error {
	var errs []error
	if !strings.HasPrefix(r.Path, "/") {
		errs = append(errs, fmt.Errorf("%s: path %q must start with '/'", where, r.Path))
	}
	switch r.PathType {
	case PathExact, PathPrefix:
	case PathRegex:
		if _, err := regexp.Compile(r.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s: path %q is not a valid regular expression: %w", where, r.Path, err))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unknown pathType %q", where, r.PathType))
	}
	errs = append(errs, validateBackend(where+".backend", &r.Backend)...)
	if r.CustomErrors != nil {
		errs = append(errs, validateCustomErrors(where+".customErrors", r.CustomErrors)...)
	}
	errs = append(errs, validateJWT(where, r.JWT)...)
	total := 0
	for k := range r.Canaries {
		c := &r.Canaries[k]
		cw := fmt.Sprintf("%s.canaries[%d]", where, k)
		errs = append(errs, validateBackend(cw+".backend", &c.Backend)...)
		if c.Header != "" && !validToken(c.Header) {
			errs = append(errs, fmt.Errorf("%s: header %q is not a header name", cw, c.Header))
		}
		if c.Header == "" && (len(c.HeaderValues) > 0 || c.HeaderPattern != "") {
			errs = append(errs, fmt.Errorf("%s: headerValues and headerPattern need header", cw))
		}
		if c.HeaderPattern != "" {
			if _, err := regexp.Compile(c.HeaderPattern); err != nil {
				errs = append(errs, fmt.Errorf("%s: headerPattern: %w", cw, err))
			}
		}
		if c.Cookie != "" && !validToken(c.Cookie) {
			errs = append(errs, fmt.Errorf("%s: cookie %q is not a cookie name", cw, c.Cookie))
		}
		if c.Cookie == "" && len(c.CookieValues) > 0 {
			errs = append(errs, fmt.Errorf("%s: cookieValues need cookie", cw))
		}
		if c.WeightTotal < 0 || c.Weight < 0 || c.Weight > c.EffectiveWeightTotal() {
			errs = append(errs, fmt.Errorf("%s: weight %d of %d out of range", cw, c.Weight, c.EffectiveWeightTotal()))
		}
		if k > 0 && c.EffectiveWeightTotal() != r.Canaries[0].EffectiveWeightTotal() {
			errs = append(errs, fmt.Errorf("%s: weightTotal differs from the route's first canary", cw))
		}
		total += c.Weight
		errs = append(errs, validateBalancer(cw+".balancer", c.Balancer)...)
	}
	if len(r.Canaries) > 0 && total > r.Canaries[0].EffectiveWeightTotal() {
		errs = append(errs, fmt.Errorf("%s: canary weights add up to %d, above weightTotal %d", where, total, r.Canaries[0].EffectiveWeightTotal()))
	}
	if rw := r.Rewrite; rw != nil {
		if !strings.HasPrefix(rw.Target, "/") && !strings.HasPrefix(rw.Target, "$") || hasControl(rw.Target) {
			errs = append(errs, fmt.Errorf("%s.rewrite: target %q must be a path starting with '/' or '$'", where, rw.Target))
		}
		if hasControl(rw.ForwardedPrefix) {
			errs = append(errs, fmt.Errorf("%s.rewrite: forwardedPrefix holds control characters", where))
		}
	}
	if rd := r.Redirect; rd != nil {
		if rd.URL != "" {
			if err := ValidRedirectURL(rd.URL); err != nil {
				errs = append(errs, fmt.Errorf("%s.redirect: %w", where, err))
			}
			if rd.Code < 300 || rd.Code > 308 {
				errs = append(errs, fmt.Errorf("%s.redirect: code %d is not 300..308", where, rd.Code))
			}
		} else if rd.Code != 0 {
			errs = append(errs, fmt.Errorf("%s.redirect: code without url", where))
		}
		if rd.AppRoot != "" && (!strings.HasPrefix(rd.AppRoot, "/") || hasControl(rd.AppRoot)) {
			errs = append(errs, fmt.Errorf("%s.redirect: appRoot %q must be a path", where, rd.AppRoot))
		}
	}
	if c := r.CORS; c != nil {
		if len(c.AllowOrigins) == 0 {
			errs = append(errs, fmt.Errorf("%s.cors: allowOrigins is empty", where))
		}
		for _, o := range c.AllowOrigins {
			if err := ValidOrigin(o); err != nil {
				errs = append(errs, fmt.Errorf("%s.cors: %w", where, err))
			}
		}
		for _, m := range c.AllowMethods {
			if !validToken(m) || strings.ToUpper(m) != m {
				errs = append(errs, fmt.Errorf("%s.cors: method %q is not an upper-case token", where, m))
			}
		}
		for _, h := range slices.Concat(c.AllowHeaders, c.ExposeHeaders) {
			if h != "*" && !validToken(h) {
				errs = append(errs, fmt.Errorf("%s.cors: %q is not a header name", where, h))
			}
		}
		if c.MaxAgeSeconds < 0 {
			errs = append(errs, fmt.Errorf("%s.cors: maxAgeSeconds is negative", where))
		}
	}
	if a := r.Access; a != nil {
		for _, p := range slices.Concat(a.Allow, a.Deny) {
			if pp, err := netip.ParsePrefix(p); err != nil || pp.Masked().String() != p {
				errs = append(errs, fmt.Errorf("%s.access: %q is not a canonical CIDR", where, p))
			}
		}
	}
	if l := r.Limits; l != nil {
		if l.RPS < 0 || l.RPM < 0 || l.Connections < 0 || l.BurstMultiplier < 0 || (l.MaxBodyBytes != nil && *l.MaxBodyBytes < 0) {
			errs = append(errs, fmt.Errorf("%s.limits: negative value", where))
		}
	}
	errs = append(errs, validateBalancer(where+".balancer", r.Balancer)...)
	if u := r.Upstream; u != nil {
		switch u.Protocol {
		case "", ProtocolHTTP, ProtocolHTTPS, ProtocolGRPC, ProtocolGRPCS:
		default:
			errs = append(errs, fmt.Errorf("%s.upstream: unknown protocol %q", where, u.Protocol))
		}
		if u.Host != "" {
			h := u.Host
			if hh, _, err := net.SplitHostPort(h); err == nil {
				h = hh
			}
			if err := ValidHost(h, false); err != nil {
				errs = append(errs, fmt.Errorf("%s.upstream: %w", where, err))
			}
		}
		if u.ConnectTimeoutMs < 0 || u.ReadTimeoutMs < 0 || u.SendTimeoutMs < 0 || u.Tries < 0 {
			errs = append(errs, fmt.Errorf("%s.upstream: negative value", where))
		}
		errs = append(errs, validateUpstreamTLS(where+".upstream", u)...)
	}
	return errs
}

func validateBalancer(where string, b *Balancer) []error {
	if b == nil {
		return nil
	}
	var errs []error
	switch b.Policy {
	case "", BalanceRoundRobin, BalanceEWMA, BalanceLeastConn:
	default:
		errs = append(errs, fmt.Errorf("%s: unknown policy %q", where, b.Policy))
	}
	if b.HashBy != "" {
		if err := ValidHashBy(b.HashBy); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	if a := b.Affinity; a != nil {
		if !validToken(a.Cookie) {
			errs = append(errs, fmt.Errorf("%s.affinity: cookie %q is not a cookie name", where, a.Cookie))
		}
		if a.Mode != "" && a.Mode != "balanced" && a.Mode != "persistent" {
			errs = append(errs, fmt.Errorf("%s.affinity: unknown mode %q", where, a.Mode))
		}
		if a.SameSite != "" && a.SameSite != "Lax" && a.SameSite != "Strict" && a.SameSite != "None" {
			errs = append(errs, fmt.Errorf("%s.affinity: unknown sameSite %q", where, a.SameSite))
		}
		if a.CanaryBehavior != "" && a.CanaryBehavior != "sticky" && a.CanaryBehavior != "legacy" {
			errs = append(errs, fmt.Errorf("%s.affinity: unknown canaryBehavior %q", where, a.CanaryBehavior))
		}
		if hasControl(a.Path) || strings.ContainsAny(a.Path, ";") || hasControl(a.Domain) || strings.ContainsAny(a.Domain, "; ") {
			errs = append(errs, fmt.Errorf("%s.affinity: path or domain holds a forbidden character", where))
		}
		if a.ExpiresSeconds < 0 || a.MaxAgeSeconds < 0 {
			errs = append(errs, fmt.Errorf("%s.affinity: negative value", where))
		}
	}
	return errs
}

func validateBackend(where string, b *Backend) []error {
	var errs []error
	if b.Name == "" {
		errs = append(errs, fmt.Errorf("%s: name is empty", where))
	}
	for k, ep := range b.Endpoints {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %q is not host:port", where, k, ep))
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: port %q out of range", where, k, port))
		}
	}
	errs = append(errs, validateHealthCheck(where, b.HealthCheck)...)
	return errs
}

// ValidHashBy accepts the request values a consistent-hash balancer may use;
// free nginx expressions are refused.
func ValidHashBy(v string) error {
	switch v {
	case "$request_uri", "$uri", "$host", "$remote_addr", "$binary_remote_addr":
		return nil
	}
	for _, p := range []string{"$http_", "$cookie_", "$arg_"} {
		if name, ok := strings.CutPrefix(v, p); ok && name != "" && strings.Trim(strings.ToLower(name), "abcdefghijklmnopqrstuvwxyz0123456789_-") == "" {
			return nil
		}
	}
	return fmt.Errorf("hash key %q is not one of $request_uri, $uri, $host, $remote_addr, $http_<name>, $cookie_<name>, $arg_<name>", v)
}

// ValidRedirectURL accepts an absolute http or https URL without spaces or
// control characters.
func ValidRedirectURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || hasControl(v) || strings.ContainsAny(v, " \"'\\") {
		return fmt.Errorf("redirect %q is not an absolute http(s) URL", v)
	}
	return nil
}

// ValidOrigin accepts "*" or "scheme://host[:port]", where host may start
// with "*." for one label.
func ValidOrigin(o string) error {
	if o == "*" {
		return nil
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || strings.Trim(scheme, "abcdefghijklmnopqrstuvwxyz0123456789+.-") != "" || rest == "" {
		return fmt.Errorf("origin %q is not scheme://host[:port]", o)
	}
	host := rest
	if h, p, err := net.SplitHostPort(rest); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("origin %q: bad port", o)
		}
		host = h
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return nil
	}
	if err := ValidHost(host, true); err != nil {
		return fmt.Errorf("origin %q: %w", o, err)
	}
	return nil
}

// validToken reports whether s is a non-empty RFC 9110 token (header,
// method and cookie names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ValidToken is validToken for the compiler's annotation parsers.
func ValidToken(s string) bool { return validToken(s) }

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
