// Package annotations reads the ingress-nginx annotations people migrate
// with, plus Portico's own, into typed configuration. Each group of
// annotations is a declarative table (name, validator, scope, risk, doc) and
// a parser that returns a typed struct or an *Error naming the annotation:
// an invalid value rejects the Ingress instead of being logged and
// defaulted, and every annotation that would inject configuration text (the
// *-snippet family and its kin) is refused by name.
//
// Every annotation is read under two prefixes: "nginx.ingress.kubernetes.io/"
// with ingress-nginx's exact meaning, and "portico.dev/", which wins when
// both are set and may go further (several canaries per route, several
// header values, custom cookie values, any canary-weight-total).
package annotations

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// Annotation prefixes.
const (
	NginxPrefix   = "nginx.ingress.kubernetes.io/"
	PorticoPrefix = "portico.dev/"
)

// Reasons carried by *Error, used as the Ingress's rejection reason.
const (
	// ReasonInvalidAnnotation: a value does not parse or is out of range.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	// ReasonRefusedAnnotation: the annotation would inject configuration
	// text (snippets) or asks for a feature refused by design.
	ReasonRefusedAnnotation = "RefusedAnnotation"
	// ReasonUnsupportedAnnotation: a security annotation Portico does not
	// implement yet; serving the Ingress without it would weaken it.
	ReasonUnsupportedAnnotation = "UnsupportedAnnotation"
)

// Risk is ingress-nginx's risk level of an annotation.
type Risk int

// Risk levels, lowest first.
const (
	RiskLow Risk = iota
	RiskMedium
	RiskHigh
	RiskCritical
)

func (r Risk) String() string {
	return [...]string{"Low", "Medium", "High", "Critical"}[r]
}

// Scope says what an annotation applies to.
type Scope string

// Scopes.
const (
	// ScopeIngress: the Ingress as a whole (e.g. canary marks it an alternative).
	ScopeIngress Scope = "Ingress"
	// ScopeLocation: every route (host+path) of the Ingress.
	ScopeLocation Scope = "Location"
	// ScopeHost: every host of the Ingress's rules.
	ScopeHost Scope = "Host"
)

// Annotation is one row of a group's table.
type Annotation struct {
	// Name is the annotation without prefix, e.g. "canary-weight".
	Name string
	// Validator checks a raw value; its error says what is wrong.
	Validator func(string) error
	// Scope and Risk document the annotation (Risk is ingress-nginx's level).
	Scope Scope
	Risk  Risk
	// PorticoOnly annotations are read only under PorticoPrefix.
	PorticoOnly bool
	// Doc is one sentence for users.
	Doc string
}

// Error is an annotation that rejects its Ingress.
type Error struct {
	// Annotation is the full key, prefix included.
	Annotation string
	// Reason is one of the Reason* constants.
	Reason string
	// Message says what is wrong, without the key.
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("annotation %s: %s", e.Annotation, e.Message) }

// Group is a declarative table of annotations and a parser into T.
type Group[T any] struct {
	// Name identifies the group in docs.
	Name string
	// Annotations is the table.
	Annotations []Annotation
	parse       func(r *reader) (T, error)
}

// Parse validates the group's annotations on ing and returns the typed
// configuration, or an *Error naming the first bad annotation (in table order).
func (g *Group[T]) Parse(ing *networkingv1.Ingress) (T, error) {
	return g.ParseMap(ing.Annotations)
}

// ParseMap is Parse for a bare annotation map.
func (g *Group[T]) ParseMap(annotations map[string]string) (T, error) {
	v, err := g.run(&reader{m: annotations})
	return v, err
}

func (g *Group[T]) run(r *reader) (T, error) {
	for i := range g.Annotations {
		a := &g.Annotations[i]
		val, key, ok := r.lookup(a)
		if !ok {
			continue
		}
		if hasControl(val) {
			var zero T
			return zero, &Error{key, ReasonInvalidAnnotation, "value holds control characters (newlines are never valid)"}
		}
		if a.Validator != nil {
			if err := a.Validator(val); err != nil {
				var zero T
				return zero, &Error{key, ReasonInvalidAnnotation, fmt.Sprintf("invalid value %q: %v", truncate(val), err)}
			}
		}
	}
	return g.parse(r)
}

// Doc is one annotation of the generated documentation.
type Doc struct {
	Group, Name string
	Scope       Scope
	Risk        Risk
	PorticoOnly bool
	Doc         string
}

// Docs lists every supported annotation, for documentation and tests.
func Docs() []Doc {
	var out []Doc
	add := func(group string, as []Annotation) {
		for _, a := range as {
			out = append(out, Doc{group, a.Name, a.Scope, a.Risk, a.PorticoOnly, a.Doc})
		}
	}
	add(CanaryGroup.Name, CanaryGroup.Annotations)
	add(RewriteGroup.Name, RewriteGroup.Annotations)
	add(RedirectGroup.Name, RedirectGroup.Annotations)
	add(CORSGroup.Name, CORSGroup.Annotations)
	add(AccessGroup.Name, AccessGroup.Annotations)
	add(LimitsGroup.Name, LimitsGroup.Annotations)
	add(BalancerGroup.Name, BalancerGroup.Annotations)
	add(UpstreamGroup.Name, UpstreamGroup.Annotations)
	add(ProxySSLGroup.Name, ProxySSLGroup.Annotations)
	add(ClientAuthGroup.Name, ClientAuthGroup.Annotations)
	add(CustomErrorsGroup.Name, CustomErrorsGroup.Annotations)
	add(HealthGroup.Name, HealthGroup.Annotations)
	add(JWTGroup.Name, JWTGroup.Annotations)
	return out
}

// reader looks annotations up under both prefixes and collects warnings.
type reader struct {
	m        map[string]string
	warnings []string
}

// lookup returns the value of a, its full key, and whether it is set;
// portico.dev/ wins over the nginx prefix.
func (r *reader) lookup(a *Annotation) (val, key string, ok bool) {
	k, cached := fullKeys[a.Name]
	if !cached {
		k = [2]string{PorticoPrefix + a.Name, NginxPrefix + a.Name}
	}
	if v, ok := r.m[k[0]]; ok {
		return v, k[0], true
	}
	if a.PorticoOnly {
		return "", "", false
	}
	if v, ok := r.m[k[1]]; ok {
		return v, k[1], true
	}
	return "", "", false
}

// get returns the trimmed value of name and whether it came from portico.dev/.
func (r *reader) get(name string) (val string, ok, portico bool) {
	k, cached := fullKeys[name]
	if !cached {
		k = [2]string{PorticoPrefix + name, NginxPrefix + name}
	}
	if v, ok := r.m[k[0]]; ok {
		return strings.TrimSpace(v), true, true
	}
	if porticoOnly[name] {
		return "", false, false
	}
	if v, ok := r.m[k[1]]; ok {
		return strings.TrimSpace(v), true, false
	}
	return "", false, false
}

// key returns the full key name is set under (for messages).
func (r *reader) key(name string) string {
	if _, ok := r.m[PorticoPrefix+name]; ok {
		return PorticoPrefix + name
	}
	return NginxPrefix + name
}

func (r *reader) has(name string) bool { _, ok, _ := r.get(name); return ok }

func (r *reader) str(name string) string { v, _, _ := r.get(name); return v }

func (r *reader) boolean(name string, def bool) bool {
	v, ok, _ := r.get(name)
	if !ok {
		return def
	}
	b, _ := parseBool(v)
	return b
}

func (r *reader) integer(name string, def int) int {
	v, ok, _ := r.get(name)
	if !ok {
		return def
	}
	n, _ := parseInt(v)
	return n
}

func (r *reader) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func (r *reader) errorf(name, reason, format string, args ...any) error {
	return &Error{r.key(name), reason, fmt.Sprintf(format, args...)}
}

// Config is every group parsed from one Ingress.
type Config struct {
	Canary   Canary
	Rewrite  Rewrite
	Redirect Redirect
	CORS     CORS
	Access   Access
	Limits   Limits
	Balancer Balancer
	Upstream Upstream
	ProxySSL ProxySSL
	// ClientAuth is auth-tls-*.
	ClientAuth ClientAuth
	// CustomErrors is custom-http-errors and default-backend.
	CustomErrors CustomErrors
	Health       Health
	JWT          JWT
	// Warnings are problems that do not reject the Ingress (an annotation
	// ignored, a value adjusted the way ingress-nginx adjusts it), sorted.
	Warnings []string
}

// Parse reads every group from ing. The first refused annotation (in key
// order), then the first invalid one, is returned as an *Error. Unknown and
// ignored annotations under our prefixes become Warnings.
func Parse(ing *networkingv1.Ingress) (Config, error) {
	return ParseMap(ing.Annotations)
}

// ParseMap is Parse for a bare annotation map.
func ParseMap(annotations map[string]string) (Config, error) {
	var c Config
	if !hasOurs(annotations) {
		return c, nil
	}
	if err := checkRefused(annotations); err != nil {
		return c, err
	}
	r := &reader{m: annotations}
	var err error
	if c.Canary, err = CanaryGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Rewrite, err = RewriteGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Redirect, err = RedirectGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.CORS, err = CORSGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Access, err = AccessGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Limits, err = LimitsGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Balancer, err = BalancerGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Upstream, err = UpstreamGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.ProxySSL, err = ProxySSLGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.ClientAuth, err = ClientAuthGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.CustomErrors, err = CustomErrorsGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.Health, err = HealthGroup.run(r); err != nil {
		return Config{}, err
	}
	if c.JWT, err = JWTGroup.run(r); err != nil {
		return Config{}, err
	}
	r.warnings = append(r.warnings, unknownWarnings(annotations)...)
	slices.Sort(r.warnings)
	c.Warnings = slices.Compact(r.warnings)
	return c, nil
}

func hasOurs(m map[string]string) bool {
	for k := range m {
		if strings.HasPrefix(k, NginxPrefix) || strings.HasPrefix(k, PorticoPrefix) {
			return true
		}
	}
	return false
}

// sortedKeys returns our-prefixed keys of m in order, for deterministic errors.
func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, NginxPrefix) || strings.HasPrefix(k, PorticoPrefix) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(a, b) })
	return keys
}

func nameOf(key string) string {
	if n, ok := strings.CutPrefix(key, NginxPrefix); ok {
		return n
	}
	return strings.TrimPrefix(key, PorticoPrefix)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return true
		}
	}
	return false
}
