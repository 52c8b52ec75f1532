package annotations

import (
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Upstream is the upstream group.
type Upstream struct {
	// Protocol is HTTP, HTTPS, GRPC or GRPCS (snapshot.Protocol*); "" when
	// unset (AUTO_HTTP is HTTP).
	Protocol string
	// Host is upstream-vhost, lower-cased host[:port].
	Host string
	// Timeouts in seconds (ingress-nginx's unit); 0 when unset.
	ConnectTimeout, ReadTimeout, SendTimeout int
	// Tries is proxy-next-upstream-tries; 0 when unset.
	Tries int
}

// UpstreamGroup reads backend-protocol, upstream-vhost, proxy-*-timeout and
// proxy-next-upstream-tries.
var UpstreamGroup = &Group[Upstream]{
	Name: "upstream",
	Annotations: []Annotation{
		{Name: "backend-protocol", Validator: vBackendProtocol, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "HTTP (default; AUTO_HTTP is HTTP), HTTPS (HTTP/1.1 over TLS, see proxy-ssl-*), GRPC (HTTP/2 without TLS, prior knowledge) or GRPCS (HTTP/2 over TLS). gRPC clients reach the gateway over HTTP/2 (TLS with ALPN, or h2c on the plain port). FCGI and AJP are refused."},
		{Name: "upstream-vhost", Validator: vHostPort, Scope: ScopeLocation, Risk: RiskLow, Doc: "Host header sent upstream."},
		{Name: "proxy-connect-timeout", Validator: vInt(0, 3600), Scope: ScopeLocation, Risk: RiskLow, Doc: "Seconds to connect upstream (GRPC/GRPCS: to open the HTTP/2 connection)."},
		{Name: "proxy-read-timeout", Validator: vInt(0, 86400), Scope: ScopeLocation, Risk: RiskLow, Doc: "Seconds between two reads from upstream, the response header included. GRPC/GRPCS: the longest silence of the server's stream, not a limit on the call (then grpc-status 4 DEADLINE_EXCEEDED, 504)."},
		{Name: "proxy-send-timeout", Validator: vInt(0, 86400), Scope: ScopeLocation, Risk: RiskLow, Doc: "Seconds between two writes to upstream. GRPC/GRPCS: the longest silence of the client's stream, not a limit on the call (then the call is cancelled: grpc-status 4, 408)."},
		{Name: "proxy-next-upstream-tries", Validator: vInt(0, 100), Scope: ScopeLocation, Risk: RiskLow, Doc: "Attempts on further endpoints after a failure; 0 = default."},
	},
	parse: func(r *reader) (Upstream, error) {
		u := Upstream{
			Protocol:       strings.ToUpper(r.str("backend-protocol")),
			Host:           strings.ToLower(r.str("upstream-vhost")),
			ConnectTimeout: r.integer("proxy-connect-timeout", 0),
			ReadTimeout:    r.integer("proxy-read-timeout", 0),
			SendTimeout:    r.integer("proxy-send-timeout", 0),
			Tries:          r.integer("proxy-next-upstream-tries", 0),
		}
		if u.Protocol == "AUTO_HTTP" {
			u.Protocol = snapshot.ProtocolHTTP
		}
		switch u.Protocol {
		case "FCGI", "AJP":
			return Upstream{}, r.errorf("backend-protocol", ReasonRefusedAnnotation,
				"%s upstreams are not supported; use HTTP, HTTPS, GRPC or GRPCS", u.Protocol)
		}
		return u, nil
	},
}

func vBackendProtocol(v string) error {
	return vEnum("HTTP", "HTTPS", "GRPC", "GRPCS", "AUTO_HTTP", "FCGI", "AJP")(strings.ToUpper(strings.TrimSpace(v)))
}
