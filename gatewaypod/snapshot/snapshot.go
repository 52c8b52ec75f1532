// Package snapshot is the wire format shared by the controller (which writes it
// into the instance's ConfigMap) and gatewaypod (which reads, validates and
// serves it). It imports nothing from Kubernetes so the data plane stays small
// and the format can be tested without I/O.
//
// Everything a route does is a typed field: there is no free text that
// gatewaypod would interpret as configuration. Key material never appears
// here: a TLS host names its Secret and pins the content by hash, and the
// bytes travel in the instance's Secret (see CertificateDataKeys).
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// SchemaVersion is bumped whenever the meaning of a field changes, so an old
// gatewaypod refuses a snapshot it would misread instead of guessing. New
// optional fields do not bump it: Decode refuses unknown fields, so an old
// gatewaypod still refuses a snapshot that uses them.
const SchemaVersion = 1

// ConfigMapKey is the key that holds the encoded snapshot in the ConfigMap.
const ConfigMapKey = "snapshot.json"

// PathType says how Route.Path is matched.
type PathType string

const (
	// PathExact matches the URL path exactly, case-sensitively.
	PathExact PathType = "Exact"
	// PathPrefix matches element by element on '/'-separated path segments.
	PathPrefix PathType = "Prefix"
	// PathRegex matches when the Go (RE2) regular expression Path matches at
	// the start of the URL path, case-insensitively, as ingress-nginx's
	// `location ~* "^<path>"`. Only ImplementationSpecific paths of an
	// Ingress with use-regex (or rewrite-target) become Regex.
	PathRegex PathType = "Regex"
)

// Snapshot is one immutable, versioned routing configuration for one gateway
// instance. Lists are sorted by the compiler so equal inputs give equal bytes.
type Snapshot struct {
	// SchemaVersion is the format version, see SchemaVersion.
	SchemaVersion int `json:"schemaVersion"`
	// Version is a content hash of the snapshot with Version left empty
	// (see Hash); gatewaypod reports it so the controller can tell when ready
	// pods serve the current configuration.
	Version string `json:"version"`
	// Hosts are the virtual hosts, sorted by Host. Host "" matches any host.
	Hosts []VirtualHost `json:"hosts,omitempty"`
	// DefaultBackend serves requests that match no route and no virtual
	// host's default; nil means 404.
	DefaultBackend *Backend `json:"defaultBackend,omitempty"`
	// Certificates are the TLS certificates to serve by SNI, sorted by Secret.
	Certificates []Certificate `json:"certificates,omitempty"`
}

// VirtualHost groups the routes of one host name.
type VirtualHost struct {
	// Host is a lower-case DNS name, "*.example.com" for a one-label wildcard,
	// or "" for rules without a host.
	Host string `json:"host"`
	// Aliases are further exact host names served by this virtual host
	// (server-alias), sorted. They never shadow a real host.
	Aliases []string `json:"aliases,omitempty"`
	// Routes are ordered by the compiler: longer paths first, then Exact,
	// Prefix, Regex on equal length, so the first match wins.
	Routes []Route `json:"routes,omitempty"`
	// DefaultBackend serves requests for this host that match no route (the
	// spec.defaultBackend of the oldest Ingress with rules for the host).
	DefaultBackend *Backend `json:"defaultBackend,omitempty"`
	// RedirectHost, when set, answers every request for Host with a 308 to
	// the same URI on RedirectHost (from-to-www-redirect); Routes is empty.
	RedirectHost string `json:"redirectHost,omitempty"`
	// ClientAuth, when set, verifies client certificates for every request
	// to this host (auth-tls-*), see ClientAuth.
	ClientAuth *ClientAuth `json:"clientAuth,omitempty"`
}

// Route sends requests whose path matches to one backend, or to one of its
// canaries, after applying its policies.
type Route struct {
	// Path is the Ingress path; it always starts with '/'.
	Path string `json:"path"`
	// PathType is Exact, Prefix or Regex.
	PathType PathType `json:"pathType"`
	// Backend is where matching requests go unless a canary takes them.
	Backend Backend `json:"backend"`
	// Source names the Ingress the route came from, "namespace/name", for logs.
	Source string `json:"source,omitempty"`
	// Canaries are alternative backends, evaluated in order (see Canary).
	Canaries []Canary `json:"canaries,omitempty"`
	// Rewrite replaces the upstream path.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Redirect answers with a redirect instead of proxying.
	Redirect *Redirect `json:"redirect,omitempty"`
	// CORS answers preflights and decorates responses.
	CORS *CORS `json:"cors,omitempty"`
	// Access allows or denies client source addresses.
	Access *Access `json:"access,omitempty"`
	// Limits bounds request rate, connections and body size.
	Limits *Limits `json:"limits,omitempty"`
	// Balancer picks an endpoint; nil means round robin.
	Balancer *Balancer `json:"balancer,omitempty"`
	// Upstream says how to talk to the backend.
	Upstream *Upstream `json:"upstream,omitempty"`
	// CustomErrors replaces chosen upstream error responses (custom-http-errors).
	CustomErrors *CustomErrors `json:"customErrors,omitempty"`
	// JWT, when set, requires a valid JSON Web Token (401 otherwise).
	JWT *JWT `json:"jwt,omitempty"`
}

// Backend is a resolved Service port.
type Backend struct {
	// Name identifies the backend, "namespace/service:port", for logs and metrics.
	Name string `json:"name"`
	// Endpoints are the "host:port" addresses, sorted and de-duplicated: the
	// ready ones, or, when none is ready, the serving-but-terminating ones.
	// Empty means the route exists but has nowhere to go: gatewaypod answers 503.
	Endpoints []string `json:"endpoints,omitempty"`
	// HealthCheck, when set, actively probes every endpoint (see HealthCheck).
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// Canary is an alternative backend for a route. Per request, the route's
// canaries are consulted in three passes, ingress-nginx's order: first the
// header rule of each canary, then the cookie rule of each, then one weighted
// draw. A header or cookie "never" ends the search on the primary.
type Canary struct {
	// Backend receives the requests the canary takes.
	Backend Backend `json:"backend"`
	// Source names the canary Ingress, "namespace/name".
	Source string `json:"source,omitempty"`
	// Header is a request header name. Without HeaderValues and
	// HeaderPattern, its value "always" selects the canary and "never" the
	// primary; any other value falls through.
	Header string `json:"header,omitempty"`
	// HeaderValues: the canary is selected when the header equals one of them;
	// anything else (including always/never) falls through.
	HeaderValues []string `json:"headerValues,omitempty"`
	// HeaderPattern is an unanchored RE2 regular expression used when
	// HeaderValues is empty; a match selects the canary.
	HeaderPattern string `json:"headerPattern,omitempty"`
	// Cookie is a cookie name: "always" selects the canary, "never" the
	// primary (the weight is not consulted), anything else falls through.
	Cookie string `json:"cookie,omitempty"`
	// CookieValues, when set, replace always/never: a cookie equal to one of
	// them selects the canary, anything else falls through.
	CookieValues []string `json:"cookieValues,omitempty"`
	// Weight is this canary's share of WeightTotal for requests that no
	// header or cookie decided.
	Weight int `json:"weight,omitempty"`
	// WeightTotal is the effective divisor; 0 means 100. All canaries of a
	// route share it.
	WeightTotal int `json:"weightTotal,omitempty"`
	// Balancer, when set, replaces the route's balancer for this canary.
	Balancer *Balancer `json:"balancer,omitempty"`
}

// EffectiveWeightTotal returns WeightTotal, or 100 when it is 0.
func (c *Canary) EffectiveWeightTotal() int {
	if c.WeightTotal == 0 {
		return 100
	}
	return c.WeightTotal
}

// Rewrite replaces the upstream path, as ingress-nginx's
// `rewrite "(?i)<path>" <target> break`: when the route's path (a regular
// expression for Regex routes, the literal path otherwise) matches the
// request path case-insensitively, the whole path becomes Target with $1..$9
// replaced by the capture groups. The query string is kept.
type Rewrite struct {
	// Target is the new path; it may hold $0..$9.
	Target string `json:"target"`
	// ForwardedPrefix, when set, is sent as X-Forwarded-Prefix.
	ForwardedPrefix string `json:"forwardedPrefix,omitempty"`
}

// Redirect answers a request with a redirect. Order: AppRoot (only for the
// path "/"), then URL, then SSL.
type Redirect struct {
	// URL is an absolute http(s) URL returned as is with Code.
	URL string `json:"url,omitempty"`
	// Code is the status for URL, 300..308.
	Code int `json:"code,omitempty"`
	// SSL redirects plain-HTTP requests to https with 308.
	SSL bool `json:"ssl,omitempty"`
	// AppRoot redirects "/" to this path with 302.
	AppRoot string `json:"appRoot,omitempty"`
}

// CORS is the cross-origin policy of a route (enable-cors).
type CORS struct {
	// AllowOrigins are "*" or "scheme://host[:port]" origins; a host may
	// start with "*." for one label.
	AllowOrigins []string `json:"allowOrigins"`
	// AllowMethods are upper-case method names.
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders and ExposeHeaders are header names.
	AllowHeaders  []string `json:"allowHeaders,omitempty"`
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// AllowCredentials sets Access-Control-Allow-Credentials: true.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// MaxAgeSeconds is the preflight cache time; 0 omits the header.
	MaxAgeSeconds int `json:"maxAgeSeconds,omitempty"`
}

// Access filters clients by source address. Deny is checked first; when
// Allow is not empty, an address outside it is refused (403).
type Access struct {
	// Allow and Deny are canonical CIDR prefixes ("10.0.0.0/8", "::1/128").
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// Limits bounds what one client may do on a route, per gateway replica.
type Limits struct {
	// RPS and RPM are request rates per client address; 0 means none.
	RPS int `json:"rps,omitempty"`
	RPM int `json:"rpm,omitempty"`
	// Connections is the number of concurrent connections per client address.
	Connections int `json:"connections,omitempty"`
	// BurstMultiplier scales the rate into a burst size; 0 means 5.
	BurstMultiplier int `json:"burstMultiplier,omitempty"`
	// MaxBodyBytes bounds the request body (413 above it); nil means the
	// gateway default, 0 means unlimited.
	MaxBodyBytes *int64 `json:"maxBodyBytes,omitempty"`
}

// Balancer policies.
const (
	BalanceRoundRobin = "round_robin"
	BalanceEWMA       = "ewma"
	BalanceLeastConn  = "least_conn"
)

// Balancer says how an endpoint is chosen.
type Balancer struct {
	// Policy is round_robin, ewma or least_conn; "" means round_robin.
	Policy string `json:"policy,omitempty"`
	// HashBy, when set, picks the endpoint by consistent hashing of one
	// request value: "$request_uri", "$uri", "$host", "$remote_addr",
	// "$http_<name>", "$cookie_<name>" or "$arg_<name>".
	HashBy string `json:"hashBy,omitempty"`
	// Affinity pins clients to an endpoint with a cookie.
	Affinity *Affinity `json:"affinity,omitempty"`
}

// Affinity is cookie-based session affinity.
type Affinity struct {
	// Mode is "balanced" (default) or "persistent".
	Mode string `json:"mode,omitempty"`
	// Cookie is the cookie name.
	Cookie string `json:"cookie"`
	// Path, Domain and SameSite are cookie attributes ("" omits them).
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	SameSite string `json:"sameSite,omitempty"`
	// ExpiresSeconds and MaxAgeSeconds; 0 omits them (a session cookie).
	ExpiresSeconds int `json:"expiresSeconds,omitempty"`
	MaxAgeSeconds  int `json:"maxAgeSeconds,omitempty"`
	// Secure sets the Secure attribute.
	Secure bool `json:"secure,omitempty"`
	// ChangeOnFailure re-pins the client when its endpoint fails.
	ChangeOnFailure bool `json:"changeOnFailure,omitempty"`
	// CanaryBehavior is "sticky" (default: clients pinned to a canary
	// endpoint stay on the canary) or "legacy".
	CanaryBehavior string `json:"canaryBehavior,omitempty"`
}

// Upstream protocols.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
	ProtocolGRPC  = "GRPC"
	ProtocolGRPCS = "GRPCS"
)

// Upstream says how to talk to a backend.
type Upstream struct {
	// Protocol is HTTP (default), HTTPS, GRPC or GRPCS.
	Protocol string `json:"protocol,omitempty"`
	// Host replaces the Host header sent upstream (upstream-vhost).
	Host string `json:"host,omitempty"`
	// Timeouts in milliseconds; 0 means the gateway default.
	ConnectTimeoutMs int `json:"connectTimeoutMs,omitempty"`
	ReadTimeoutMs    int `json:"readTimeoutMs,omitempty"`
	SendTimeoutMs    int `json:"sendTimeoutMs,omitempty"`
	// Tries bounds attempts on further endpoints after a failure; 0 means
	// the gateway default.
	Tries int `json:"tries,omitempty"`
	// TLS configures TLS to HTTPS and GRPCS upstreams; nil means TLS
	// without verification, ingress-nginx's default. See UpstreamTLS.
	TLS *UpstreamTLS `json:"tls,omitempty"`
}

// Certificate is a TLS certificate served for Hosts. The PEM bytes are in
// the instance Secret under CertificateDataKeys(Secret).
type Certificate struct {
	// Secret is the source Secret, "namespace/name".
	Secret string `json:"secret"`
	// Hash pins the content: see CertificateHash.
	Hash string `json:"hash"`
	// Hosts are lower-case names or one-label wildcards, sorted. A Default
	// certificate may have none.
	Hosts []string `json:"hosts"`
	// Default marks the instance's default certificate, served when no
	// host matches the TLS server name. The compiler puts it first.
	Default bool `json:"default,omitempty"`
}

// CertificateDataKeys returns the keys of the instance Secret that hold the
// certificate chain and private key of secret ("namespace/name"). '_' cannot
// occur in a namespace or a name, so the keys are unambiguous.
func CertificateDataKeys(secret string) (crt, key string) {
	b := []byte(secret)
	for i, c := range b {
		if c == '/' {
			b[i] = '_'
		}
	}
	return string(b) + ".crt", string(b) + ".key"
}

// CADataKey returns the key of the instance Secret that holds the CA bundle
// (PEM) taken from secret's "ca.crt": the trust anchors used to verify
// client certificates (auth-tls-secret) and upstream servers
// (proxy-ssl-secret). Pin its content in the snapshot with DataHash.
func CADataKey(secret string) string {
	crt, _ := CertificateDataKeys(secret)
	return crt[:len(crt)-len(".crt")] + ".ca"
}

// DataHash is the hash pinned in the snapshot for key material that travels
// in the instance Secret (CA bundles and the like): the first 16 hex digits
// of the SHA-256 of the parts, each followed by a zero byte.
func DataHash(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// CertificateHash is the hash pinned in Certificate.Hash: the first 16 hex
// digits of the SHA-256 of the chain, a zero byte, and the key.
func CertificateHash(crt, key []byte) string {
	h := sha256.New()
	h.Write(crt)
	h.Write([]byte{0})
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Hash returns the content version of s: "v<schema>-" plus the first 16 hex
// digits of the SHA-256 of its canonical JSON with Version cleared.
func Hash(s *Snapshot) string {
	_, v := canonical(s)
	return v
}

// canonical returns the JSON of s with Version cleared, and its version.
func canonical(s *Snapshot) ([]byte, string) {
	c := *s
	c.Version = ""
	b, err := json.Marshal(&c)
	if err != nil {
		// Marshal of this plain struct cannot fail; a panic here is a programmer error.
		panic(fmt.Sprintf("snapshot: marshal: %v", err))
	}
	sum := sha256.Sum256(b)
	return b, "v" + strconv.Itoa(c.SchemaVersion) + "-" + hex.EncodeToString(sum[:8])
}

// Seal sets SchemaVersion and Version and returns the canonical JSON. Use
// Encode for the ConfigMap payload.
func Seal(s *Snapshot) []byte {
	s.SchemaVersion = SchemaVersion
	b, v := canonical(s)
	s.Version = v
	// The JSON with Version cleared differs from the sealed JSON only in the
	// version field, which follows schemaVersion: splice instead of
	// marshalling twice.
	empty := []byte(`"version":""`)
	i := bytes.Index(b, empty)
	if i < 0 || i > 32 {
		b, _ = json.Marshal(s)
		return b
	}
	out := make([]byte, 0, len(b)+len(v))
	out = append(out, b[:i]...)
	out = append(out, `"version":"`...)
	out = append(out, v...)
	out = append(out, '"')
	return append(out, b[i+len(empty):]...)
}

// Decode parses and validates an encoded snapshot: canonical JSON, or the
// compressed form Encode produces for large snapshots. Unknown fields are
// refused so a snapshot from a newer controller is not silently half-applied.
func Decode(b []byte) (*Snapshot, error) {
	if IsCompressed(b) {
		raw, err := decompress(b)
		if err != nil {
			return nil, fmt.Errorf("decode snapshot: %w", err)
		}
		b = raw
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode snapshot: trailing data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
