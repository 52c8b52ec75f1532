package annotations

import (
	"fmt"
	"strings"
)

// refused are annotations that inject configuration text or pull in
// features refused by design. Any name ending in "-snippet" is refused too.
var refused = map[string]string{
	"enable-modsecurity":           "ModSecurity is out of scope; put a WAF in front of the gateway",
	"enable-owasp-core-rules":      "ModSecurity is out of scope; put a WAF in front of the gateway",
	"modsecurity-transaction-id":   "it is an nginx variable expression evaluated as configuration",
	"lua-resty-waf":                "it loads Lua WAF rules into the proxy",
	"lua-resty-waf-extra-rules":    "it injects Lua WAF rules into the proxy configuration",
	"fastcgi-params-configmap":     "FastCGI is not supported",
	"fastcgi-index":                "FastCGI is not supported",
	"influxdb-measurement":         "the InfluxDB module is not supported",
	"influxdb-port":                "the InfluxDB module is not supported",
	"influxdb-host":                "the InfluxDB module is not supported",
	"influxdb-server-name":         "the InfluxDB module is not supported",
	"enable-influxdb":              "the InfluxDB module is not supported",
	"http2-push-preload":           "HTTP/2 server push is not supported",
	"stream-snippet":               "it injects nginx configuration text",
	"proxy-set-headers":            "it loads a ConfigMap of header expressions; use typed annotations",
	"custom-headers":               "it loads a ConfigMap of header expressions; use typed annotations",
	"connection-proxy-header":      "it sets an nginx expression",
	"server-snippets":              "it injects nginx configuration text",
	"configuration-snippets":       "it injects nginx configuration text",
	"opentelemetry-operation-name": "it is an nginx variable expression",
}

// unsupported are security annotations Portico does not implement yet:
// ignoring them would serve the Ingress with weaker protection than asked
// for, so the Ingress is rejected until they are implemented or removed.
var unsupported = map[string]bool{
	"auth-url": true, "auth-signin": true, "auth-signin-redirect-param": true, "auth-type": true,
	"auth-secret": true, "auth-secret-type": true, "auth-realm": true, "auth-method": true,
	"auth-response-headers": true, "auth-request-redirect": true, "auth-cache-key": true,
	"auth-cache-duration": true, "auth-proxy-set-headers": true, "auth-keepalive": true,
	"auth-always-set-cookie": true, "satisfy": true,
}

// ignored are ingress-nginx annotations that are accepted with a warning:
// they tune nginx internals or are not implemented, and ignoring them does
// not weaken the Ingress.
var ignored = map[string]string{
	"proxy-buffering": "", "proxy-buffer-size": "", "proxy-buffers-number": "", "proxy-request-buffering": "",
	"proxy-http-version": "", "proxy-cookie-domain": "", "proxy-cookie-path": "", "proxy-redirect-from": "",
	"proxy-redirect-to": "", "proxy-max-temp-file-size": "", "client-body-buffer-size": "",
	"proxy-next-upstream": "", "proxy-next-upstream-timeout": "", "upstream-hash-by-subset": "",
	"upstream-hash-by-subset-size": "", "session-cookie-conditional-samesite-none": "", "preserve-trailing-slash": "",
	"enable-access-log": "", "enable-rewrite-log": "", "enable-opentelemetry": "", "opentelemetry-trust-incoming-span": "",
	"service-upstream": "", "ssl-ciphers": "", "ssl-prefer-server-ciphers": "", "enable-global-auth": "",
	"mirror-target": "", "mirror-host": "",
	"mirror-request-body": "", "ssl-passthrough": "", "x-forwarded-prefix-header": "", "use-port-in-redirects": "",
	"canary-by-header-value-separator": "", "limit-rate": "", "limit-rate-after": "", "global-rate-limit": "",
	"global-rate-limit-window": "", "global-rate-limit-key": "", "global-rate-limit-ignored-cidrs": "",
	"limit-whitelist": "", "limit-allowlist": "",
}

// checkRefused returns an *Error for the first refused or unsupported
// annotation, in key order.
func checkRefused(m map[string]string) error {
	for _, key := range sortedKeys(m) {
		name := nameOf(key)
		if strings.HasSuffix(name, "-snippet") || strings.HasSuffix(name, "-snippets") {
			return &Error{key, ReasonRefusedAnnotation, "snippets inject configuration text and are refused; express the intent with typed annotations"}
		}
		if why, ok := refused[name]; ok {
			return &Error{key, ReasonRefusedAnnotation, "refused: " + why}
		}
		if unsupported[name] {
			return &Error{key, ReasonUnsupportedAnnotation, "not supported yet; the Ingress is refused rather than served without the protection it asks for"}
		}
	}
	return nil
}

// known is every name a group reads; porticoOnly those read only under
// PorticoPrefix. Both are filled by init from the tables.
var known, porticoOnly = map[string]bool{}, map[string]bool{}

// fullKeys caches the two full keys of each known name.
var fullKeys = map[string][2]string{}

func init() {
	for _, d := range Docs() {
		known[d.Name] = true
		fullKeys[d.Name] = [2]string{PorticoPrefix + d.Name, NginxPrefix + d.Name}
		porticoOnly[d.Name] = d.PorticoOnly
	}
}

// unknownWarnings warns about ignored and unknown annotations under our prefixes.
func unknownWarnings(m map[string]string) []string {
	var out []string
	for _, key := range sortedKeys(m) {
		name := nameOf(key)
		if known[name] && !(porticoOnly[name] && strings.HasPrefix(key, NginxPrefix)) {
			continue
		}
		if known[name] {
			out = append(out, fmt.Sprintf("annotation %s exists only under %s and is ignored", key, PorticoPrefix))
			continue
		}
		if _, ok := ignored[name]; ok {
			out = append(out, fmt.Sprintf("annotation %s is not supported by Portico and is ignored", key))
			continue
		}
		out = append(out, fmt.Sprintf("annotation %s is unknown and ignored", key))
	}
	return out
}
