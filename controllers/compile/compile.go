// Package compile translates Kubernetes objects (Ingresses, IngressClasses,
// Services, EndpointSlices, TLS Secrets) into one gateway instance's
// snapshot, plus one Result per Ingress. It is pure: no client, no context,
// no clock, so the same Inputs always give the same bytes, and every case is
// a table test.
//
// Ingress semantics implemented here (networking.k8s.io/v1):
//
//   - pathType Exact and Prefix as the API defines them. ImplementationSpecific
//     means Prefix (element-wise), except on an Ingress with use-regex or
//     rewrite-target, where it means a case-insensitive RE2 regular
//     expression anchored at the start of the path (ingress-nginx's `~* ^`).
//     use-regex affects only its own Ingress, not every path of the host.
//   - Precedence, whatever the rule order or Ingress: the longest path wins;
//     on equal length Exact, then Prefix, then Regex.
//   - Hosts are lower-cased; "*.foo.com" matches exactly one label; exact
//     hosts beat wildcards, wildcards beat rules without a host. The host is
//     chosen first and never falls through: a request whose host selects a
//     virtual host but whose path matches none of its routes goes to that
//     host's default backend (spec.defaultBackend of the oldest Ingress with
//     rules for it), then to the instance's default backend, then 404. This is
//     what the Ingress API implies (rules are per host; defaultBackend serves
//     what no rule matches) and what ingress-nginx, Contour and Envoy do.
//   - Conflicts (same host, path and type; two TLS Secrets for one host; a
//     second canary under the nginx prefix) go to the oldest Ingress, then
//     namespace/name, with a Warning on the loser.
//   - The instance's default backend is Inputs.DefaultBackend (the
//     GatewayConfig's), else the oldest Ingress's spec.defaultBackend.
//   - Backends: Service port by number or name; EndpointSlices merged,
//     de-duplicated; ready endpoints, or serving-but-terminating ones only when
//     none is ready; ExternalName Services resolve to their DNS name. A missing
//     Service, port or endpoint is a Warning and a route that answers 503.
//     Resource backends reject the Ingress.
//   - Annotations: see package annotations. An invalid or refused annotation
//     rejects its Ingress alone. A canary Ingress attaches to the primary
//     routes with the same host, path and type, and uses only its canary and
//     balancer annotations (as ingress-nginx); a canary with no primary is
//     rejected.
package compile

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Annotations that select an IngressClass the legacy way and mark a default class.
const (
	legacyClassAnnotation  = "kubernetes.io/ingress.class"
	defaultClassAnnotation = networkingv1.AnnotationIsDefaultIngressClass
)

// Inputs is everything the compiler reads. The slices may hold objects that
// do not concern the instance; Compile selects what it needs.
type Inputs struct {
	// Instance is the GatewayConfig name the snapshot is for.
	Instance string
	// IngressClasses are all IngressClasses in the cluster.
	IngressClasses []networkingv1.IngressClass
	// Ingresses are all Ingresses the instance may serve.
	Ingresses []networkingv1.Ingress
	// Services and EndpointSlices resolve Ingress backends.
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	// Secrets resolve spec.tls; only those named by an Ingress are read.
	Secrets []corev1.Secret
	// DefaultBackend is the instance's own default backend (from the
	// GatewayConfig); nil when it has none.
	DefaultBackend *BackendRef
	// DefaultCertificate names the instance's default TLS Secret (from the
	// GatewayConfig), served when no host matches the server name; it must
	// be in Secrets. Nil: the first certificate serves as the default.
	DefaultCertificate *types.NamespacedName
	// Now is when the compilation happens, to warn about expired or not yet
	// valid certificates; zero skips those checks (the compiler reads no
	// clock of its own).
	Now time.Time
}

// BackendRef names a Service port in a namespace.
type BackendRef struct {
	Namespace string
	Service   networkingv1.IngressServiceBackend
}

// Result is the outcome for one Ingress of a bound class.
type Result struct {
	// Ingress names the object.
	Ingress types.NamespacedName
	// Accepted is true when the Ingress is in the snapshot.
	Accepted bool
	// Reason is a CamelCase word for Events: Accepted or a rejection reason.
	Reason string
	// Message explains a rejection.
	Message string
	// Warnings are problems that did not reject the Ingress (a missing
	// Service, a route lost to an older Ingress); each becomes an Event.
	Warnings []Warning
}

// Warning is a non-fatal problem found while compiling an Ingress.
type Warning struct {
	// Reason is a CamelCase word for the Event.
	Reason string
	// Message says what is wrong and what happens meanwhile.
	Message string
}

// Reasons used in Results and Warnings. Annotation rejections use the
// annotations.Reason* values.
const (
	ReasonAccepted             = "Accepted"
	ReasonInvalidHost          = "InvalidHost"
	ReasonInvalidPath          = "InvalidPath"
	ReasonResourceBackend      = "UnsupportedResourceBackend"
	ReasonNoBackend            = "NoBackend"
	ReasonServiceNotFound      = "ServiceNotFound"
	ReasonPortNotFound         = "ServicePortNotFound"
	ReasonNoEndpoints          = "NoReadyEndpoints"
	ReasonRouteConflict        = "RouteConflict"
	ReasonAnnotationWarning    = "AnnotationWarning"
	ReasonCanaryWithoutPrimary = "CanaryWithoutPrimary"
	ReasonCanaryConflict       = "CanaryConflict"
	ReasonTLSSecretNotFound    = "TLSSecretNotFound"
	ReasonTLSSecretInvalid     = "TLSSecretInvalid"
	ReasonTLSConflict          = "TLSConflict"
	ReasonDefaultBackendUnused = "DefaultBackendUnused"
)

// Output is what Compile produces.
type Output struct {
	// Snapshot is sealed: Version is set.
	Snapshot *snapshot.Snapshot
	// Encoded is the ConfigMap payload (snapshot.Encode of the canonical
	// JSON: compressed above snapshot.CompressThreshold).
	Encoded []byte
	// TLSData is the instance Secret's data: for each Certificate in the
	// snapshot, its chain and key under snapshot.CertificateDataKeys, and
	// for each upstream TLS Secret (proxy-ssl-secret) its CA under
	// snapshot.CADataKey and client certificate under CertificateDataKeys;
	// for each client CA (auth-tls-secret) its bundle under
	// snapshot.CADataKey; the JWT keys of routes under snapshot.JWTDataKey.
	// Nil when there is no key material. Never put it in the ConfigMap.
	TLSData map[string][]byte
	// Classes are the names of the IngressClasses bound to the instance, sorted.
	Classes []string
	// Results has one entry per Ingress of a bound class, sorted by namespace/name.
	Results []Result
	// Warnings are instance-level problems (the GatewayConfig's default
	// backend cannot be resolved), for Events on the GatewayConfig.
	Warnings []Warning
}

// BoundClasses returns the names of the IngressClasses whose controller is
// Portico and whose parameters name the instance, sorted, and whether one of
// them is the cluster default.
func BoundClasses(instance string, classes []networkingv1.IngressClass) (names []string, isDefault bool) {
	for i := range classes {
		c := &classes[i]
		if c.Spec.Controller != gatewayv1alpha1.ControllerName || c.Spec.Parameters == nil {
			continue
		}
		p := c.Spec.Parameters
		if p.APIGroup == nil || *p.APIGroup != gatewayv1alpha1.GroupVersion.Group || p.Kind != "GatewayConfig" || p.Name != instance {
			continue
		}
		names = append(names, c.Name)
		if c.Annotations[defaultClassAnnotation] == "true" {
			isDefault = true
		}
	}
	slices.Sort(names)
	return names, isDefault
}

// ClassOf returns the IngressClass name an Ingress asks for: spec.ingressClassName,
// else the legacy annotation, else "" (the default class).
func ClassOf(ing *networkingv1.Ingress) string {
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	return ing.Annotations[legacyClassAnnotation]
}

// compiled is one accepted Ingress on its way into the snapshot.
type compiled struct {
	ing    *networkingv1.Ingress
	src    string
	res    *Result
	cfg    annotations.Config
	routes []hostRoute
	def    *snapshot.Backend
	upTLS  upstreamTLS // proxy-ssl-* (see upstreamtls.go)
	// clientAuth is the resolved auth-tls-* (nil without).
	clientAuth *clientAuthOf
}

// Compile builds the instance's snapshot.
func Compile(in Inputs) Output {
	classes, isDefault := BoundClasses(in.Instance, in.IngressClasses)
	idx := newIndex(in.Services, in.EndpointSlices)

	// Oldest first, then namespace/name: the order decides conflicts, so it
	// must not depend on list order.
	var ings []*networkingv1.Ingress
	for i := range in.Ingresses {
		ing := &in.Ingresses[i]
		class := ClassOf(ing)
		if (class == "" && isDefault) || slices.Contains(classes, class) {
			ings = append(ings, ing)
		}
	}
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})

	results := make([]Result, len(ings))
	secrets := secretIndex(in.Secrets)
	var primaries, canaries []*compiled
	jwtKeys := map[string][]byte{}
	for i, ing := range ings {
		res := &results[i]
		res.Ingress = types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
		cfg, err := annotations.Parse(ing)
		if err != nil {
			var ae *annotations.Error
			if errors.As(err, &ae) {
				res.Reason, res.Message = ae.Reason, ae.Error()
			} else {
				res.Reason, res.Message = annotations.ReasonInvalidAnnotation, err.Error()
			}
			continue
		}
		for _, w := range cfg.Warnings {
			res.Warnings = append(res.Warnings, Warning{ReasonAnnotationWarning, w})
		}
		c := &compiled{ing: ing, src: ing.Namespace + "/" + ing.Name, res: res, cfg: cfg}
		if !cfg.Canary.Enabled {
			up, warnings, rej := resolveUpstreamTLS(ing, &cfg, secrets)
			if rej != nil {
				res.Reason, res.Message, res.Warnings = rej.reason, rej.message, nil
				continue
			}
			c.upTLS = up
			res.Warnings = append(res.Warnings, warnings...)
		}
		rej := translate(c, idx)
		if rej == nil {
			rej = resolveClientAuth(c, in.Secrets)
		}
		if rej == nil {
			rej = applyJWT(c, in.Secrets, jwtKeys)
		}
		if rej != nil {
			res.Reason, res.Message = rej.reason, rej.message
			res.Warnings = nil
			continue
		}
		applyCustomErrors(c, idx)
		if cfg.Canary.Enabled {
			canaries = append(canaries, c)
		} else {
			primaries = append(primaries, c)
		}
	}

	b := &builder{hosts: map[string]*vhostBuild{}, owner: map[routeKey]*routeBuild{}}
	out := Output{Classes: classes}
	snap := &snapshot.Snapshot{}
	if in.DefaultBackend != nil {
		var res Result
		ib := networkingv1.IngressBackend{Service: &in.DefaultBackend.Service}
		def, rej := idx.backend(in.DefaultBackend.Namespace, &ib, "GatewayConfig default backend", &res)
		if rej != nil {
			res.Warnings = append(res.Warnings, Warning{rej.reason, rej.message})
		} else {
			snap.DefaultBackend = def
		}
		out.Warnings = res.Warnings
	}
	for _, c := range primaries {
		c.res.Accepted, c.res.Reason = true, ReasonAccepted
		b.addPrimary(c)
		usedDefault := false
		if c.def != nil && snap.DefaultBackend == nil {
			snap.DefaultBackend, usedDefault = c.def, true
		}
		if c.def != nil {
			for _, h := range ruleHosts(c.ing) {
				if vh := b.hosts[h]; vh.def == nil {
					vh.def, usedDefault = c.def, true
				}
			}
			if !usedDefault {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonDefaultBackendUnused,
					"spec.defaultBackend is not used: the instance's default backend and those of this Ingress's hosts are already set by the GatewayConfig or older Ingresses"})
			}
		}
	}
	b.fromToWWW(primaries)
	b.serverAliases(primaries)
	for _, c := range canaries {
		if rej := b.addCanary(c); rej != nil {
			c.res.Reason, c.res.Message, c.res.Warnings = rej.reason, rej.message, nil
			continue
		}
		c.res.Accepted, c.res.Reason = true, ReasonAccepted
	}
	snap.Certificates, out.TLSData = certificates(primaries, in.Secrets)
	out.TLSData = b.clientAuth(primaries, out.TLSData)
	certificateWarnings(primaries, in.Secrets, in.Now)
	if in.DefaultCertificate != nil {
		var w *Warning
		snap.Certificates, out.TLSData, w = withDefaultCertificate(snap.Certificates, out.TLSData, *in.DefaultCertificate, in.Secrets)
		if w != nil {
			out.Warnings = append(out.Warnings, *w)
		}
	}
	out.TLSData = withUpstreamTLSData(out.TLSData, primaries)

	out.TLSData = withJWTKeys(out.TLSData, jwtKeys)

	for _, host := range sortedKeys(b.hosts) {
		vh := b.hosts[host]
		v := snapshot.VirtualHost{Host: host, DefaultBackend: vh.def, RedirectHost: vh.redirect, Aliases: vh.aliases, ClientAuth: vh.clientAuth}
		for _, r := range vh.routes {
			v.Routes = append(v.Routes, r.route)
		}
		slices.SortFunc(v.Routes, routeOrder)
		snap.Hosts = append(snap.Hosts, v)
	}
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(strings.Compare(a.Ingress.Namespace, b.Ingress.Namespace), strings.Compare(a.Ingress.Name, b.Ingress.Name))
	})
	out.Snapshot = snap
	out.Encoded = snapshot.Encode(snapshot.Seal(snap))
	out.Results = results
	return out
}

// routeOrder puts longer paths first and, on equal length, Exact, Prefix,
// then Regex; the path itself breaks remaining ties.
func routeOrder(a, b snapshot.Route) int {
	if len(a.Path) != len(b.Path) {
		return len(b.Path) - len(a.Path)
	}
	if a.PathType != b.PathType {
		return typeRank(a.PathType) - typeRank(b.PathType)
	}
	return strings.Compare(a.Path, b.Path)
}

func typeRank(t snapshot.PathType) int {
	switch t {
	case snapshot.PathExact:
		return 0
	case snapshot.PathPrefix:
		return 1
	}
	return 2
}

type routeKey struct {
	host, path string
	pathType   snapshot.PathType
}

type hostRoute struct {
	host  string
	route snapshot.Route
}

type rejection struct{ reason, message string }

func displayHost(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// builder merges accepted Ingresses into virtual hosts.
type builder struct {
	hosts map[string]*vhostBuild
	owner map[routeKey]*routeBuild
}

type vhostBuild struct {
	routes   []*routeBuild
	def      *snapshot.Backend
	redirect string
	aliases  []string
	// clientAuth is the host's auth-tls-* (see builder.clientAuth).
	clientAuth *snapshot.ClientAuth
}

type routeBuild struct {
	route   snapshot.Route
	portico bool // every canary so far came from portico.dev/canary
}

func (b *builder) host(h string) *vhostBuild {
	vh := b.hosts[h]
	if vh == nil {
		vh = &vhostBuild{}
		b.hosts[h] = vh
	}
	return vh
}

func (b *builder) addPrimary(c *compiled) {
	kept := c.routes[:0]
	for _, hr := range c.routes {
		k := routeKey{hr.host, hr.route.Path, hr.route.PathType}
		if prev, taken := b.owner[k]; taken {
			c.res.Warnings = append(c.res.Warnings, Warning{ReasonRouteConflict, fmt.Sprintf(
				"host %q path %q (%s) is already served by the older Ingress %s; this rule is ignored",
				displayHost(hr.host), hr.route.Path, hr.route.PathType, prev.route.Source)})
			continue
		}
		hr.route.Source = c.src
		rb := &routeBuild{route: hr.route, portico: true}
		b.owner[k] = rb
		vh := b.host(hr.host)
		vh.routes = append(vh.routes, rb)
		kept = append(kept, hr)
	}
	c.routes = kept
	// A host with only a default backend still selects its virtual host.
	if c.def != nil {
		for _, h := range ruleHosts(c.ing) {
			b.host(h)
		}
	}
}

// serverAliases adds server-alias names to the virtual hosts of each
// Ingress's exact rule hosts, oldest Ingress first. A name that is a host
// of its own, or an alias already, is not taken over: a warning says so.
func (b *builder) serverAliases(primaries []*compiled) {
	taken := map[string]string{} // alias -> host it serves
	for _, c := range primaries {
		for _, a := range c.cfg.Redirect.Aliases {
			for _, h := range ruleHosts(c.ing) {
				vh := b.hosts[h]
				if h == "" || strings.HasPrefix(h, "*.") || vh == nil || h == a {
					continue
				}
				if _, isHost := b.hosts[a]; isHost {
					c.res.Warnings = append(c.res.Warnings, Warning{ReasonRouteConflict, fmt.Sprintf(
						"server-alias %q is a host of its own; it is not an alias of %q", a, h)})
					break
				}
				if prev, ok := taken[a]; ok {
					if prev != h {
						c.res.Warnings = append(c.res.Warnings, Warning{ReasonRouteConflict, fmt.Sprintf(
							"server-alias %q already serves host %q; it is not an alias of %q", a, prev, h)})
					}
					break
				}
				taken[a] = h
				vh.aliases = append(vh.aliases, a)
				slices.Sort(vh.aliases)
				break // an alias names one virtual host: the Ingress's first exact rule host
			}
		}
	}
}

// fromToWWW adds redirecting virtual hosts for from-to-www-redirect.
func (b *builder) fromToWWW(primaries []*compiled) {
	for _, c := range primaries {
		if !c.cfg.Redirect.FromToWWW {
			continue
		}
		for _, h := range ruleHosts(c.ing) {
			if h == "" || strings.HasPrefix(h, "*.") {
				continue
			}
			other := "www." + h
			if s, ok := strings.CutPrefix(h, "www."); ok {
				other = s
			}
			if vh, taken := b.hosts[other]; taken {
				if vh.redirect != h {
					c.res.Warnings = append(c.res.Warnings, Warning{ReasonRouteConflict, fmt.Sprintf(
						"from-to-www-redirect: host %q is served by an Ingress; no redirect to %q is added", other, h)})
				}
				continue
			}
			b.hosts[other] = &vhostBuild{redirect: h}
		}
	}
}

// addCanary attaches each route of a canary Ingress to its primary.
func (b *builder) addCanary(c *compiled) *rejection {
	if len(c.routes) == 0 {
		return &rejection{ReasonCanaryWithoutPrimary, "a canary Ingress needs rules whose host, path and path type match a primary Ingress"}
	}
	for _, hr := range c.routes {
		k := routeKey{hr.host, hr.route.Path, hr.route.PathType}
		if p := b.owner[k]; p == nil || p.route.Source == "" {
			return &rejection{ReasonCanaryWithoutPrimary, fmt.Sprintf(
				"no primary Ingress serves host %q path %q (%s); a canary must share host, path and path type with one", displayHost(hr.host), hr.route.Path, hr.route.PathType)}
		}
	}
	cc := c.cfg.Canary
	for _, hr := range c.routes {
		p := b.owner[routeKey{hr.host, hr.route.Path, hr.route.PathType}]
		where := fmt.Sprintf("host %q path %q (%s)", displayHost(hr.host), hr.route.Path, hr.route.PathType)
		existing := p.route.Canaries
		if len(existing) > 0 && (!p.portico || !cc.Portico) {
			c.res.Warnings = append(c.res.Warnings, Warning{ReasonCanaryConflict, fmt.Sprintf(
				"%s already has the canary %s; ingress-nginx allows one canary per route (use portico.dev/canary on all of them for several); this rule is ignored", where, existing[0].Source)})
			continue
		}
		total := cc.WeightTotal
		if len(existing) > 0 {
			if t := existing[0].EffectiveWeightTotal(); t != total {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonCanaryConflict, fmt.Sprintf(
					"%s: canary-weight-total %d differs from %d of the canary %s; this rule is ignored", where, total, t, existing[0].Source)})
				continue
			}
			sum := cc.Weight
			for _, e := range existing {
				sum += e.Weight
			}
			if sum > total {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonCanaryConflict, fmt.Sprintf(
					"%s: canary weights would add up to %d, above canary-weight-total %d; this rule is ignored", where, sum, total)})
				continue
			}
		}
		can := snapshot.Canary{
			Backend: hr.route.Backend, Source: c.src,
			Header: cc.Header, HeaderValues: cc.HeaderValues, HeaderPattern: cc.HeaderPattern,
			Cookie: cc.Cookie, CookieValues: cc.CookieValues,
			Weight: cc.Weight, Balancer: hr.route.Balancer,
		}
		if total != 100 {
			can.WeightTotal = total
		}
		p.route.Canaries = append(p.route.Canaries, can)
		p.portico = p.portico && cc.Portico
	}
	var ignored []string
	for name, v := range map[string]any{"rewrite": c.cfg.Rewrite, "redirect": c.cfg.Redirect, "cors": c.cfg.CORS, "access": c.cfg.Access, "limits": c.cfg.Limits, "upstream": c.cfg.Upstream, "proxy-ssl": c.cfg.ProxySSL} {
		if !reflect.ValueOf(v).IsZero() {
			ignored = append(ignored, name)
		}
	}
	if len(ignored) > 0 {
		slices.Sort(ignored)
		c.res.Warnings = append(c.res.Warnings, Warning{ReasonAnnotationWarning, fmt.Sprintf(
			"annotations of the groups %s are ignored on a canary Ingress: it inherits them from its primary", strings.Join(ignored, ", "))})
	}
	if c.ing.Spec.DefaultBackend != nil {
		c.res.Warnings = append(c.res.Warnings, Warning{ReasonDefaultBackendUnused, "spec.defaultBackend is ignored on a canary Ingress"})
	}
	return nil
}

func ruleHosts(ing *networkingv1.Ingress) []string {
	var out []string
	for _, r := range ing.Spec.Rules {
		h := strings.ToLower(r.Host)
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// translate turns one Ingress into routes. A rejection means the whole
// Ingress is left out, so a half-valid Ingress never ships half its rules.
func translate(c *compiled, idx *index) *rejection {
	ing, res := c.ing, c.res
	tlsHosts := map[string]bool{}
	for _, t := range ing.Spec.TLS {
		for _, h := range t.Hosts {
			tlsHosts[strings.ToLower(h)] = true
		}
	}
	pol := policies(&c.cfg)
	if c.upTLS.settings != nil && pol.upstream != nil {
		pol.upstream.TLS = c.upTLS.settings
	}
	for i, rule := range ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if host != "" {
			if snapshot.ValidHost(host, true) != nil || net.ParseIP(host) != nil {
				return &rejection{ReasonInvalidHost, fmt.Sprintf("spec.rules[%d].host %q is not a DNS name or one-label wildcard", i, rule.Host)}
			}
		}
		if rule.HTTP == nil {
			continue
		}
		redirect := pol.redirect(tlsHosts[host] || wildcardCovers(tlsHosts, host), &c.cfg)
		for j, p := range rule.HTTP.Paths {
			path := p.Path
			if path == "" {
				path = "/"
			}
			if !strings.HasPrefix(path, "/") {
				return &rejection{ReasonInvalidPath, fmt.Sprintf("spec.rules[%d].http.paths[%d].path %q must start with '/'", i, j, p.Path)}
			}
			pt := snapshot.PathPrefix
			switch {
			case p.PathType != nil && *p.PathType == networkingv1.PathTypeExact:
				pt = snapshot.PathExact
			case (p.PathType == nil || *p.PathType == networkingv1.PathTypeImplementationSpecific) && c.cfg.Rewrite.UseRegex:
				pt = snapshot.PathRegex
				if _, err := regexp.Compile(path); err != nil {
					return &rejection{ReasonInvalidPath, fmt.Sprintf("spec.rules[%d].http.paths[%d].path %q is not a valid RE2 regular expression (use-regex): %v", i, j, p.Path, err)}
				}
			}
			if pt == snapshot.PathPrefix && len(path) > 1 {
				path = strings.TrimRight(path, "/")
				if path == "" {
					path = "/"
				}
			}
			b, rej := idx.backend(ing.Namespace, &p.Backend, fmt.Sprintf("spec.rules[%d].http.paths[%d].backend", i, j), res)
			if rej != nil {
				return rej
			}
			b.HealthCheck = pol.health
			r := snapshot.Route{Path: path, PathType: pt, Backend: *b, Redirect: redirect,
				CORS: pol.cors, Access: pol.access, Limits: pol.limits, Balancer: pol.balancer, Upstream: pol.upstream}
			if pol.rewrite != nil && pol.rewrite.Target != path {
				r.Rewrite = pol.rewrite
			}
			c.routes = append(c.routes, hostRoute{host, r})
		}
	}
	if ing.Spec.DefaultBackend != nil {
		b, rej := idx.backend(ing.Namespace, ing.Spec.DefaultBackend, "spec.defaultBackend", res)
		if rej != nil {
			return rej
		}
		b.HealthCheck = pol.health
		c.def = b
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		return &rejection{ReasonNoBackend, "the Ingress has neither rules nor spec.defaultBackend"}
	}
	return nil
}

func wildcardCovers(tlsHosts map[string]bool, host string) bool {
	if i := strings.IndexByte(host, '.'); i > 0 && !strings.HasPrefix(host, "*.") {
		return tlsHosts["*"+host[i:]]
	}
	return false
}

// policy holds one Ingress's snapshot policies, shared by its routes.
type policy struct {
	rewrite  *snapshot.Rewrite
	cors     *snapshot.CORS
	access   *snapshot.Access
	limits   *snapshot.Limits
	balancer *snapshot.Balancer
	upstream *snapshot.Upstream
	health   *snapshot.HealthCheck // of the Ingress's backends
	// redirects per "host has TLS in this Ingress", built on demand.
	redirects [2]*snapshot.Redirect
	built     [2]bool
}

func policies(cfg *annotations.Config) *policy {
	p := &policy{health: cfg.Health.Check}
	if rw := cfg.Rewrite; rw.Target != "" {
		p.rewrite = &snapshot.Rewrite{Target: rw.Target, ForwardedPrefix: rw.ForwardedPrefix}
	}
	if c := cfg.CORS; c.Enabled {
		p.cors = &snapshot.CORS{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
			ExposeHeaders: c.ExposeHeaders, AllowCredentials: c.AllowCredentials, MaxAgeSeconds: c.MaxAgeSeconds}
	}
	if a := cfg.Access; len(a.Allow)+len(a.Deny) > 0 {
		p.access = &snapshot.Access{}
		for _, x := range a.Allow {
			p.access.Allow = append(p.access.Allow, x.String())
		}
		for _, x := range a.Deny {
			p.access.Deny = append(p.access.Deny, x.String())
		}
	}
	if l := cfg.Limits; l != (annotations.Limits{}) {
		p.limits = &snapshot.Limits{RPS: l.RPS, RPM: l.RPM, Connections: l.Connections, BurstMultiplier: l.BurstMultiplier, MaxBodyBytes: l.BodySize}
	}
	if b := cfg.Balancer; b.Policy != "" || b.HashBy != "" || b.Affinity != nil {
		p.balancer = &snapshot.Balancer{Policy: b.Policy, HashBy: b.HashBy, Affinity: b.Affinity}
	}
	if u := cfg.Upstream; u != (annotations.Upstream{}) {
		p.upstream = &snapshot.Upstream{Protocol: u.Protocol, Host: u.Host, ConnectTimeoutMs: u.ConnectTimeout * 1000,
			ReadTimeoutMs: u.ReadTimeout * 1000, SendTimeoutMs: u.SendTimeout * 1000, Tries: u.Tries}
	}
	return p
}

// redirect returns the routes' Redirect for a host with or without TLS in
// the Ingress (ssl-redirect defaults to true only with TLS).
func (p *policy) redirect(hostTLS bool, cfg *annotations.Config) *snapshot.Redirect {
	i := 0
	if hostTLS {
		i = 1
	}
	if p.built[i] {
		return p.redirects[i]
	}
	p.built[i] = true
	rd := cfg.Redirect
	ssl := rd.ForceSSLRedirect || (hostTLS && (rd.SSLRedirect == nil || *rd.SSLRedirect))
	r := snapshot.Redirect{URL: rd.URL, Code: rd.Code, SSL: ssl, AppRoot: cfg.Rewrite.AppRoot}
	if r != (snapshot.Redirect{}) {
		p.redirects[i] = &r
	}
	return p.redirects[i]
}

// certificates resolves spec.tls of accepted primaries, oldest first: the
// first Ingress to claim a host with a valid Secret wins it.
func certificates(primaries []*compiled, secrets []corev1.Secret) ([]snapshot.Certificate, map[string][]byte) {
	var wanted map[types.NamespacedName]*corev1.Secret
	for _, c := range primaries {
		for _, t := range c.ing.Spec.TLS {
			if t.SecretName != "" {
				if wanted == nil {
					wanted = map[types.NamespacedName]*corev1.Secret{}
				}
				wanted[types.NamespacedName{Namespace: c.ing.Namespace, Name: t.SecretName}] = nil
			}
		}
	}
	if wanted == nil {
		return nil, nil
	}
	for i := range secrets {
		k := types.NamespacedName{Namespace: secrets[i].Namespace, Name: secrets[i].Name}
		if _, ok := wanted[k]; ok {
			wanted[k] = &secrets[i]
		}
	}
	certs := map[string]*snapshot.Certificate{}
	hostOwner := map[string]string{}
	valid := map[types.NamespacedName]string{} // secret -> "" when invalid, else the reason cached
	var data map[string][]byte
	for _, c := range primaries {
		for i, t := range c.ing.Spec.TLS {
			if t.SecretName == "" {
				continue
			}
			k := types.NamespacedName{Namespace: c.ing.Namespace, Name: t.SecretName}
			name := k.String()
			s := wanted[k]
			if s == nil {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSSecretNotFound, fmt.Sprintf(
					"spec.tls[%d]: Secret %s not found; its hosts get the default certificate", i, name)})
				continue
			}
			problem, checked := valid[k]
			if !checked {
				problem = checkTLSSecret(s)
				valid[k] = problem
			}
			if problem != "" {
				c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSSecretInvalid, fmt.Sprintf(
					"spec.tls[%d]: Secret %s %s; its hosts get the default certificate", i, name, problem)})
				continue
			}
			for _, h := range t.Hosts {
				h = strings.ToLower(h)
				if snapshot.ValidHost(h, true) != nil {
					c.res.Warnings = append(c.res.Warnings, Warning{ReasonInvalidHost, fmt.Sprintf("spec.tls[%d]: host %q is not a DNS name; ignored", i, h)})
					continue
				}
				if prev, ok := hostOwner[h]; ok {
					if prev != name {
						c.res.Warnings = append(c.res.Warnings, Warning{ReasonTLSConflict, fmt.Sprintf(
							"spec.tls[%d]: host %q already uses the certificate of Secret %s from an older Ingress; ignored", i, h, prev)})
					}
					continue
				}
				hostOwner[h] = name
				cert := certs[name]
				if cert == nil {
					crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
					cert = &snapshot.Certificate{Secret: name, Hash: snapshot.CertificateHash(crt, key)}
					certs[name] = cert
					if data == nil {
						data = map[string][]byte{}
					}
					ck, kk := snapshot.CertificateDataKeys(name)
					data[ck], data[kk] = crt, key
				}
				cert.Hosts = append(cert.Hosts, h)
			}
		}
	}
	var out []snapshot.Certificate
	for _, name := range sortedKeys(certs) {
		c := certs[name]
		slices.Sort(c.Hosts)
		out = append(out, *c)
	}
	return out, data
}

// withDefaultCertificate puts the instance's default certificate first in
// certs, marked Default, adding its key material to data. An unusable Secret
// is an instance warning and changes nothing.
func withDefaultCertificate(certs []snapshot.Certificate, data map[string][]byte, ref types.NamespacedName, secrets []corev1.Secret) ([]snapshot.Certificate, map[string][]byte, *Warning) {
	var s *corev1.Secret
	for i := range secrets {
		if secrets[i].Namespace == ref.Namespace && secrets[i].Name == ref.Name {
			s = &secrets[i]
		}
	}
	if s == nil {
		return certs, data, &Warning{ReasonTLSSecretNotFound, fmt.Sprintf(
			"spec.defaults.tlsCertificate: Secret %s not found; TLS clients without a matching host get no certificate", ref)}
	}
	if problem := checkTLSSecret(s); problem != "" {
		return certs, data, &Warning{ReasonTLSSecretInvalid, fmt.Sprintf("spec.defaults.tlsCertificate: Secret %s %s", ref, problem)}
	}
	name := ref.String()
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	def := snapshot.Certificate{Secret: name, Hash: snapshot.CertificateHash(crt, key), Default: true}
	out := []snapshot.Certificate{def}
	for _, c := range certs {
		if c.Secret == name { // an Ingress uses the same Secret: one entry
			out[0].Hosts = c.Hosts
			continue
		}
		out = append(out, c)
	}
	if data == nil {
		data = map[string][]byte{}
	}
	ck, kk := snapshot.CertificateDataKeys(name)
	data[ck], data[kk] = crt, key
	return out, data, nil
}

// checkTLSSecret returns "" when s is a usable TLS Secret, else what is wrong.
func checkTLSSecret(s *corev1.Secret) string {
	if s.Type != corev1.SecretTypeTLS {
		return fmt.Sprintf("has type %q, not %s", s.Type, corev1.SecretTypeTLS)
	}
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return fmt.Sprintf("does not hold a valid certificate and key (%v)", err)
	}
	return ""
}

// index looks Services and their EndpointSlices up by namespace/name.
type index struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// memo caches resolved endpoints per Service and port name.
	memo map[epKey][]string
}

type epKey struct {
	svc  types.NamespacedName
	port string
}

func newIndex(svcs []corev1.Service, eps []discoveryv1.EndpointSlice) *index {
	idx := &index{
		services: make(map[types.NamespacedName]*corev1.Service, len(svcs)),
		slices:   make(map[types.NamespacedName][]*discoveryv1.EndpointSlice, len(eps)),
		memo:     map[epKey][]string{},
	}
	for i := range svcs {
		idx.services[types.NamespacedName{Namespace: svcs[i].Namespace, Name: svcs[i].Name}] = &svcs[i]
	}
	for i := range eps {
		svc := eps[i].Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := types.NamespacedName{Namespace: eps[i].Namespace, Name: svc}
		idx.slices[k] = append(idx.slices[k], &eps[i])
	}
	return idx
}

// backend resolves an IngressBackend. A missing Service or endpoint is a
// warning (the route answers 503 until it appears), not a rejection.
func (idx *index) backend(ns string, ib *networkingv1.IngressBackend, where string, res *Result) (*snapshot.Backend, *rejection) {
	if ib.Resource != nil {
		return nil, &rejection{ReasonResourceBackend, fmt.Sprintf("%s: resource backends (%s %s) are not supported; use a Service", where, ib.Resource.Kind, ib.Resource.Name)}
	}
	if ib.Service == nil {
		return nil, &rejection{ReasonNoBackend, where + ": a service backend is required"}
	}
	ref := ib.Service
	portText := ref.Port.Name
	if portText == "" {
		portText = strconv.Itoa(int(ref.Port.Number))
	}
	b := &snapshot.Backend{Name: ns + "/" + ref.Name + ":" + portText}
	svcKey := types.NamespacedName{Namespace: ns, Name: ref.Name}
	svc := idx.services[svcKey]
	if svc == nil {
		res.Warnings = append(res.Warnings, Warning{ReasonServiceNotFound, fmt.Sprintf("%s: Service %s/%s not found; the route answers 503 until it exists", where, ns, ref.Name)})
		return b, nil
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (ref.Port.Name != "" && p.Name == ref.Port.Name) || (ref.Port.Name == "" && p.Port == ref.Port.Number) {
			sp = p
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		port := ref.Port.Number
		if sp != nil {
			port = sp.Port
		}
		name := strings.TrimSuffix(svc.Spec.ExternalName, ".")
		if port == 0 || name == "" {
			res.Warnings = append(res.Warnings, Warning{ReasonPortNotFound, fmt.Sprintf("%s: ExternalName Service %s/%s has no port %q or no name; the route answers 503", where, ns, ref.Name, portText)})
			return b, nil
		}
		b.Endpoints = []string{net.JoinHostPort(name, strconv.Itoa(int(port)))}
		return b, nil
	}
	if sp == nil {
		res.Warnings = append(res.Warnings, Warning{ReasonPortNotFound, fmt.Sprintf("%s: Service %s/%s has no port %q; the route answers 503", where, ns, ref.Name, portText)})
		return b, nil
	}
	k := epKey{svcKey, sp.Name}
	eps, ok := idx.memo[k]
	if !ok {
		eps = idx.endpoints(svcKey, sp.Name)
		idx.memo[k] = eps
	}
	b.Endpoints = eps
	if len(b.Endpoints) == 0 {
		res.Warnings = append(res.Warnings, Warning{ReasonNoEndpoints, fmt.Sprintf("%s: Service %s/%s has no ready endpoints; the route answers 503", where, ns, ref.Name)})
	}
	return b, nil
}

// endpoints merges all slices of a Service and returns sorted,
// de-duplicated "ip:port" strings of the port named portName: the ready
// endpoints, or, when none is ready, the serving-but-terminating ones as a
// last resort (they still answer while they drain).
func (idx *index) endpoints(svc types.NamespacedName, portName string) []string {
	var ready, draining []string
	for _, s := range idx.slices[svc] {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var port int32
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		ps := strconv.Itoa(int(port))
		for _, ep := range s.Endpoints {
			c := ep.Conditions
			isReady := c.Ready == nil || *c.Ready // nil means ready
			isDraining := !isReady && c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
			for _, a := range ep.Addresses {
				switch {
				case isReady:
					ready = append(ready, net.JoinHostPort(a, ps))
				case isDraining:
					draining = append(draining, net.JoinHostPort(a, ps))
				}
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = draining
	}
	if len(out) == 0 {
		return nil // nil when empty, so "no endpoints" has one encoding
	}
	slices.Sort(out)
	return slices.Compact(out)
}
