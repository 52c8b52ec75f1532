package annotations

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// ProxySSL is the proxy-ssl group: TLS to HTTPS and GRPCS upstreams.
type ProxySSL struct {
	// SecretNamespace and SecretName are proxy-ssl-secret ("namespace/name"
	// or a bare name); SecretNamespace is "" for a bare name, meaning the
	// Ingress's own. The compiler refuses any other namespace.
	SecretNamespace, SecretName string
	// Verify is proxy-ssl-verify ("on"; default off, as ingress-nginx).
	Verify bool
	// VerifyDepth is proxy-ssl-verify-depth; 0 when unset (no bound).
	VerifyDepth int
	// Name is proxy-ssl-name, lower-case; "" when unset.
	Name string
	// ServerName is proxy-ssl-server-name ("on" sends SNI; default off).
	ServerName bool
	// Protocols are the TLS versions of proxy-ssl-protocols, a subset of
	// snapshot.UpstreamTLSVersions; nil when unset.
	Protocols []string
	// Ciphers are proxy-ssl-ciphers as IANA suite names (keys of
	// snapshot.UpstreamCipherSuites); nil when unset or the default.
	Ciphers []string
	// Set is true when any proxy-ssl-* annotation is present.
	Set bool
}

// ProxySSLGroup reads proxy-ssl-secret, -verify, -verify-depth, -name,
// -server-name, -protocols and -ciphers. Protocols and ciphers are
// checked against fixed safe lists: no text reaches the data plane.
var ProxySSLGroup = &Group[ProxySSL]{
	Name: "proxy-ssl",
	Annotations: []Annotation{
		{Name: "proxy-ssl-secret", Validator: vSecretRef, Scope: ScopeLocation, Risk: RiskMedium,
			Doc: "Secret (\"namespace/name\" in the Ingress's own namespace, or a bare name) whose ca.crt verifies HTTPS/GRPCS upstreams and whose tls.crt/tls.key, when present, are the client certificate presented to them (mTLS). A missing or unusable Secret, or another namespace, rejects the Ingress."},
		{Name: "proxy-ssl-verify", Validator: vOnOff, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "on: verify the upstream's certificate (with the Secret's ca.crt, else the system roots) and name; off (default, as ingress-nginx): encrypt without verifying."},
		{Name: "proxy-ssl-verify-depth", Validator: vInt(1, 100), Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Most certificates allowed above the upstream's own in the verified chain; unset means no bound."},
		{Name: "proxy-ssl-name", Validator: vHost, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Name verified in the upstream's certificate and sent by SNI; default: the Service's DNS name <service>.<namespace>.svc, or the external name of an ExternalName Service."},
		{Name: "proxy-ssl-server-name", Validator: vOnOff, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "on: send the server name (proxy-ssl-name or its default) by SNI; off (default): send none."},
		{Name: "proxy-ssl-protocols", Validator: vTLSProtocols, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Space-separated TLS versions offered to the upstream; TLSv1.2 and TLSv1.3 are used, TLSv1 and TLSv1.1 are dropped with a warning, anything else rejects the Ingress. Default: TLSv1.2 TLSv1.3."},
		{Name: "proxy-ssl-ciphers", Validator: vCiphers, Scope: ScopeLocation, Risk: RiskLow,
			Doc: "Colon-separated TLS 1.2 cipher suites (OpenSSL or IANA names) among the forward-secret AEAD suites, or DEFAULT / HIGH:!aNULL:!MD5 (Go's defaults); anything else rejects the Ingress."},
	},
	parse: func(r *reader) (ProxySSL, error) {
		var p ProxySSL
		for _, name := range []string{"proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-verify-depth", "proxy-ssl-name",
			"proxy-ssl-server-name", "proxy-ssl-protocols", "proxy-ssl-ciphers"} {
			p.Set = p.Set || r.has(name)
		}
		if v := r.str("proxy-ssl-secret"); v != "" {
			p.SecretNamespace, p.SecretName, _ = splitSecretRef(v)
		}
		p.Verify = onOff(r.str("proxy-ssl-verify"))
		p.VerifyDepth = r.integer("proxy-ssl-verify-depth", 0)
		p.Name = strings.ToLower(r.str("proxy-ssl-name"))
		p.ServerName = onOff(r.str("proxy-ssl-server-name"))
		if v, ok, _ := r.get("proxy-ssl-protocols"); ok {
			var dropped []string
			p.Protocols, dropped = tlsProtocols(v)
			if len(dropped) > 0 {
				r.warnf("annotation %s: %s are not offered (TLS 1.2 is the minimum)", r.key("proxy-ssl-protocols"), strings.Join(dropped, ", "))
			}
		}
		if v, ok, _ := r.get("proxy-ssl-ciphers"); ok {
			p.Ciphers, _ = cipherSuites(v)
		}
		return p, nil
	},
}

func onOff(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "on" || v == "true"
}

func vOnOff(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "off", "true", "false":
		return nil
	}
	return errors.New(`must be "on" or "off"`)
}

// tlsProtocols returns the usable versions of a space-separated nginx
// list, in snapshot.UpstreamTLSVersions order, and the outdated ones named.
func tlsProtocols(v string) (use, dropped []string) {
	for _, p := range strings.Fields(v) {
		switch p {
		case "TLSv1", "TLSv1.1", "SSLv2", "SSLv3":
			dropped = append(dropped, p)
		}
	}
	for _, known := range snapshot.UpstreamTLSVersions {
		if slices.Contains(strings.Fields(v), known) {
			use = append(use, known)
		}
	}
	return use, dropped
}

func vTLSProtocols(v string) error {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return errors.New("is empty")
	}
	for _, p := range fields {
		switch p {
		case "TLSv1", "TLSv1.1", "SSLv2", "SSLv3", snapshot.TLSv12, snapshot.TLSv13:
		default:
			return fmt.Errorf("%q is not a TLS version (TLSv1.2, TLSv1.3)", p)
		}
	}
	if use, _ := tlsProtocols(v); len(use) == 0 {
		return errors.New("offers no TLS version from TLSv1.2 up; older ones are never used")
	}
	return nil
}

// cipherDefaults are the ingress-nginx / nginx default cipher strings,
// which mean Go's defaults (a subset of them).
var cipherDefaults = []string{"DEFAULT", "HIGH:!aNULL:!MD5"}

// cipherSuites maps a colon-separated OpenSSL (or IANA) list to IANA names;
// nil for the defaults.
func cipherSuites(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if slices.Contains(cipherDefaults, v) {
		return nil, nil
	}
	byOpenSSL := make(map[string]string, len(snapshot.UpstreamCipherSuites))
	for iana, o := range snapshot.UpstreamCipherSuites {
		byOpenSSL[o] = iana
	}
	var out []string
	for _, c := range strings.Split(v, ":") {
		c = strings.TrimSpace(c)
		iana := c
		if _, ok := snapshot.UpstreamCipherSuites[c]; !ok {
			if iana, ok = byOpenSSL[c]; !ok {
				return nil, fmt.Errorf("%q is not one of the allowed suites (forward-secret AEAD: ECDHE-{ECDSA,RSA}-{AES128-GCM-SHA256,AES256-GCM-SHA384,CHACHA20-POLY1305}) or DEFAULT", c)
			}
		}
		if !slices.Contains(out, iana) {
			out = append(out, iana)
		}
	}
	return out, nil
}

func vCiphers(v string) error {
	if err := vText(v); err != nil {
		return err
	}
	_, err := cipherSuites(v)
	return err
}
