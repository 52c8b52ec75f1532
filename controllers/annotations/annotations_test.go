package annotations

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

const n = NginxPrefix

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in           map[string]string
		want         Config
		wantErrKey   string
		wantReason   string
		wantErrMatch string
	}{
		"no annotations of ours": {in: map[string]string{"kubernetes.io/ingress.class": "x"}},
		// canary
		"canary full nginx contract": {
			in: map[string]string{n + "canary": "true", n + "canary-by-header": "X-Canary", n + "canary-by-header-value": "on",
				n + "canary-by-cookie": "canary", n + "canary-weight": "20", n + "canary-weight-total": "200"},
			want: Config{Canary: Canary{Enabled: true, Header: "X-Canary", HeaderValues: []string{"on"}, Cookie: "canary", Weight: 20, WeightTotal: 200}},
		},
		"nginx weight-total below 100 is 100, with a warning": {
			in:   map[string]string{n + "canary": "true", n + "canary-weight": "5", n + "canary-weight-total": "10"},
			want: Config{Canary: Canary{Enabled: true, Weight: 5, WeightTotal: 100}, Warnings: []string{"annotation nginx.ingress.kubernetes.io/canary-weight-total: 10 is treated as 100, as ingress-nginx does; use portico.dev/canary-weight-total for a smaller total"}},
		},
		"portico canary: any total, several values, cookie values": {
			in: map[string]string{"portico.dev/canary": "true", "portico.dev/canary-weight-total": "10", n + "canary-weight": "5",
				"portico.dev/canary-by-header": "X-Env", "portico.dev/canary-by-header-value": "beta, gamma", "portico.dev/canary-by-cookie": "env", "portico.dev/canary-by-cookie-value": "b,c"},
			want: Config{Canary: Canary{Enabled: true, Portico: true, Header: "X-Env", HeaderValues: []string{"beta", "gamma"}, Cookie: "env", CookieValues: []string{"b", "c"}, Weight: 5, WeightTotal: 10}},
		},
		"nginx header value is one value, commas included": {
			in:   map[string]string{n + "canary": "true", n + "canary-by-header": "X", n + "canary-by-header-value": "a,b"},
			want: Config{Canary: Canary{Enabled: true, Header: "X", HeaderValues: []string{"a,b"}, WeightTotal: 100}},
		},
		"header pattern ignored when value set": {
			in: map[string]string{n + "canary": "true", n + "canary-by-header": "X", n + "canary-by-header-value": "v", n + "canary-by-header-pattern": "^a"},
			want: Config{Canary: Canary{Enabled: true, Header: "X", HeaderValues: []string{"v"}, WeightTotal: 100},
				Warnings: []string{"annotation nginx.ingress.kubernetes.io/canary-by-header-pattern is ignored: canary-by-header-value is set"}},
		},
		"canary option without canary":     {in: map[string]string{n + "canary-weight": "10"}, wantErrKey: n + "canary-weight", wantReason: ReasonInvalidAnnotation, wantErrMatch: "not enabled"},
		"canary false with header":         {in: map[string]string{n + "canary": "false", n + "canary-by-header": "X"}, wantErrKey: n + "canary-by-header", wantErrMatch: "not enabled"},
		"canary bad bool":                  {in: map[string]string{n + "canary": "yes"}, wantErrKey: n + "canary", wantErrMatch: `"true" or "false"`},
		"canary weight above total":        {in: map[string]string{n + "canary": "true", n + "canary-weight": "101"}, wantErrKey: n + "canary-weight", wantErrMatch: "above canary-weight-total"},
		"canary weight not a number":       {in: map[string]string{n + "canary": "true", n + "canary-weight": "ten"}, wantErrKey: n + "canary-weight", wantErrMatch: "integer"},
		"canary bad pattern":               {in: map[string]string{n + "canary": "true", n + "canary-by-header": "X", n + "canary-by-header-pattern": "(?<=x)"}, wantErrKey: n + "canary-by-header-pattern", wantErrMatch: "RE2"},
		"canary header value needs header": {in: map[string]string{n + "canary": "true", n + "canary-by-header-value": "x"}, wantErrKey: n + "canary-by-header-value", wantErrMatch: "needs canary-by-header"},
		"canary bad header name":           {in: map[string]string{n + "canary": "true", n + "canary-by-header": "X Y"}, wantErrKey: n + "canary-by-header", wantErrMatch: "token"},
		"cookie value is portico only": {
			in:   map[string]string{n + "canary": "true", n + "canary-by-cookie": "c", n + "canary-by-cookie-value": "v"},
			want: Config{Canary: Canary{Enabled: true, Cookie: "c", WeightTotal: 100}, Warnings: []string{"annotation nginx.ingress.kubernetes.io/canary-by-cookie-value exists only under portico.dev/ and is ignored"}},
		},
		// rewrite
		"rewrite implies regex": {
			in:   map[string]string{n + "rewrite-target": "/$2", n + "x-forwarded-prefix": "/svc"},
			want: Config{Rewrite: Rewrite{Target: "/$2", UseRegex: true, ForwardedPrefix: "/svc"}},
		},
		"use-regex and app-root":             {in: map[string]string{n + "use-regex": "true", n + "app-root": "/app"}, want: Config{Rewrite: Rewrite{UseRegex: true, AppRoot: "/app"}}},
		"rewrite target with nginx variable": {in: map[string]string{n + "rewrite-target": "/$host/x"}, wantErrKey: n + "rewrite-target", wantErrMatch: "capture references"},
		"rewrite target with newline":        {in: map[string]string{n + "rewrite-target": "/a\nproxy_pass x;"}, wantErrKey: n + "rewrite-target", wantErrMatch: "control characters"},
		"app-root relative":                  {in: map[string]string{n + "app-root": "app"}, wantErrKey: n + "app-root"},
		// redirects
		"temporal wins over permanent": {
			in: map[string]string{n + "temporal-redirect": "https://a.com/x", n + "permanent-redirect": "https://b.com/", n + "ssl-redirect": "false", n + "from-to-www-redirect": "true"},
			want: Config{Redirect: Redirect{URL: "https://a.com/x", Code: 302, SSLRedirect: ptr(false), FromToWWW: true},
				Warnings: []string{"annotation nginx.ingress.kubernetes.io/permanent-redirect is ignored: temporal-redirect wins, as in ingress-nginx"}},
		},
		"permanent with code": {in: map[string]string{n + "permanent-redirect": "https://b.com/", n + "permanent-redirect-code": "308", n + "force-ssl-redirect": "true"},
			want: Config{Redirect: Redirect{URL: "https://b.com/", Code: 308, ForceSSLRedirect: true}}},
		"permanent code out of range": {in: map[string]string{n + "permanent-redirect": "https://b.com/", n + "permanent-redirect-code": "200"}, wantErrKey: n + "permanent-redirect-code", wantErrMatch: "between 300 and 308"},
		"redirect not absolute":       {in: map[string]string{n + "permanent-redirect": "/relative"}, wantErrKey: n + "permanent-redirect"},
		// cors
		"cors defaults": {in: map[string]string{n + "enable-cors": "true"}, want: Config{CORS: CORS{Enabled: true, AllowOrigins: []string{"*"},
			AllowMethods:     []string{"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"},
			AllowHeaders:     []string{"DNT", "Keep-Alive", "User-Agent", "X-Requested-With", "If-Modified-Since", "Cache-Control", "Content-Type", "Range", "Authorization"},
			AllowCredentials: true, MaxAgeSeconds: 1728000}}},
		"cors custom": {in: map[string]string{n + "enable-cors": "true", n + "cors-allow-origin": "https://a.com, https://*.b.com:8443", n + "cors-allow-methods": "get,post",
			n + "cors-allow-headers": "X-A", n + "cors-expose-headers": "X-B", n + "cors-allow-credentials": "false", n + "cors-max-age": "60"},
			want: Config{CORS: CORS{Enabled: true, AllowOrigins: []string{"https://a.com", "https://*.b.com:8443"}, AllowMethods: []string{"GET", "POST"},
				AllowHeaders: []string{"X-A"}, ExposeHeaders: []string{"X-B"}, MaxAgeSeconds: 60}}},
		"cors bad origin":     {in: map[string]string{n + "enable-cors": "true", n + "cors-allow-origin": "https://a.*.com"}, wantErrKey: n + "cors-allow-origin"},
		"cors without enable": {in: map[string]string{n + "cors-max-age": "5"}, want: Config{Warnings: []string{"annotation nginx.ingress.kubernetes.io/cors-max-age has no effect without enable-cors"}}},
		// access
		"source ranges": {in: map[string]string{n + "whitelist-source-range": "10.0.0.1/8, 192.168.1.1", n + "denylist-source-range": "10.1.0.0/16"},
			want: Config{Access: Access{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32")}, Deny: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}},
		"allowlist wins over whitelist": {in: map[string]string{n + "whitelist-source-range": "10.0.0.0/8", n + "allowlist-source-range": "::1"},
			want: Config{Access: Access{Allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}}, Warnings: []string{"annotation nginx.ingress.kubernetes.io/whitelist-source-range is ignored: allowlist-source-range is set"}}},
		"bad cidr": {in: map[string]string{n + "allowlist-source-range": "10.0.0.0/33"}, wantErrKey: n + "allowlist-source-range"},
		// limits
		"limits and body size": {in: map[string]string{n + "limit-rps": "5", n + "limit-rpm": "100", n + "limit-connections": "3", n + "limit-burst-multiplier": "2", n + "proxy-body-size": "8m"},
			want: Config{Limits: Limits{RPS: 5, RPM: 100, Connections: 3, BurstMultiplier: 2, BodySize: ptr(int64(8 << 20))}}},
		"body size unlimited": {in: map[string]string{n + "proxy-body-size": "0"}, want: Config{Limits: Limits{BodySize: ptr(int64(0))}}},
		"body size bad unit":  {in: map[string]string{n + "proxy-body-size": "8mb"}, wantErrKey: n + "proxy-body-size"},
		"negative rps":        {in: map[string]string{n + "limit-rps": "-1"}, wantErrKey: n + "limit-rps"},
		// balancer
		"affinity cookie": {in: map[string]string{n + "affinity": "cookie", n + "session-cookie-name": "route", n + "session-cookie-samesite": "Strict", n + "session-cookie-max-age": "60",
			n + "session-cookie-secure": "true", n + "affinity-mode": "persistent", n + "load-balance": "ewma"},
			want: Config{Balancer: Balancer{Policy: "ewma", Affinity: &snapshot.Affinity{Cookie: "route", SameSite: "Strict", MaxAgeSeconds: 60, Secure: true, Mode: "persistent"}}}},
		"affinity default cookie": {in: map[string]string{n + "affinity": "cookie"}, want: Config{Balancer: Balancer{Affinity: &snapshot.Affinity{Cookie: "INGRESSCOOKIE"}}}},
		"hash by whitelisted":     {in: map[string]string{n + "upstream-hash-by": "$http_x_user"}, want: Config{Balancer: Balancer{HashBy: "$http_x_user"}}},
		"hash by free expression": {in: map[string]string{n + "upstream-hash-by": "$request_uri$host"}, wantErrKey: n + "upstream-hash-by", wantReason: ReasonInvalidAnnotation},
		"unknown balancer":        {in: map[string]string{n + "load-balance": "random"}, wantErrKey: n + "load-balance"},
		// upstream
		"https upstream":   {in: map[string]string{n + "backend-protocol": "HTTPS"}, want: Config{Upstream: Upstream{Protocol: "HTTPS"}}},
		"grpc upstream":    {in: map[string]string{n + "backend-protocol": "grpc"}, want: Config{Upstream: Upstream{Protocol: "GRPC"}}},
		"grpcs upstream":   {in: map[string]string{n + "backend-protocol": " GRPCS "}, want: Config{Upstream: Upstream{Protocol: "GRPCS"}}},
		"ajp refused":      {in: map[string]string{n + "backend-protocol": "AJP"}, wantErrKey: n + "backend-protocol", wantReason: ReasonRefusedAnnotation, wantErrMatch: "AJP upstreams are not supported"},
		"unknown protocol": {in: map[string]string{n + "backend-protocol": "h2"}, wantErrKey: n + "backend-protocol", wantReason: ReasonInvalidAnnotation, wantErrMatch: "must be one of"},
		// proxy-ssl
		"proxy-ssl full": {in: map[string]string{n + "backend-protocol": "HTTPS", n + "proxy-ssl-secret": "team-a/upstream-ca", n + "proxy-ssl-verify": "on",
			n + "proxy-ssl-verify-depth": "2", n + "proxy-ssl-name": "API.Internal", n + "proxy-ssl-server-name": "on",
			n + "proxy-ssl-protocols": "TLSv1.3 TLSv1.2", n + "proxy-ssl-ciphers": "ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
			want: Config{Upstream: Upstream{Protocol: "HTTPS"}, ProxySSL: ProxySSL{SecretNamespace: "team-a", SecretName: "upstream-ca", Verify: true, VerifyDepth: 2,
				Name: "api.internal", ServerName: true, Protocols: []string{"TLSv1.2", "TLSv1.3"},
				Ciphers: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}, Set: true}}},
		"proxy-ssl bare secret name, defaults": {in: map[string]string{n + "proxy-ssl-secret": "ca", n + "proxy-ssl-verify": "off", n + "proxy-ssl-ciphers": "HIGH:!aNULL:!MD5"},
			want: Config{ProxySSL: ProxySSL{SecretName: "ca", Set: true}}},
		"proxy-ssl old protocols dropped with a warning": {in: map[string]string{n + "proxy-ssl-protocols": "TLSv1 TLSv1.1 TLSv1.2"},
			want: Config{ProxySSL: ProxySSL{Protocols: []string{"TLSv1.2"}, Set: true},
				Warnings: []string{"annotation nginx.ingress.kubernetes.io/proxy-ssl-protocols: TLSv1, TLSv1.1 are not offered (TLS 1.2 is the minimum)"}}},
		"proxy-ssl only old protocols":        {in: map[string]string{n + "proxy-ssl-protocols": "TLSv1 TLSv1.1"}, wantErrKey: n + "proxy-ssl-protocols", wantReason: ReasonInvalidAnnotation, wantErrMatch: "offers no TLS version"},
		"proxy-ssl unknown protocol":          {in: map[string]string{n + "proxy-ssl-protocols": "TLSv1.2 ALL"}, wantErrKey: n + "proxy-ssl-protocols", wantErrMatch: "is not a TLS version"},
		"proxy-ssl weak cipher refused":       {in: map[string]string{n + "proxy-ssl-ciphers": "ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA"}, wantErrKey: n + "proxy-ssl-ciphers", wantReason: ReasonInvalidAnnotation, wantErrMatch: `"RC4-SHA" is not one of the allowed suites`},
		"proxy-ssl cipher expression refused": {in: map[string]string{n + "proxy-ssl-ciphers": "ALL:!eNULL"}, wantErrKey: n + "proxy-ssl-ciphers"},
		"proxy-ssl verify yes":                {in: map[string]string{n + "proxy-ssl-verify": "yes"}, wantErrKey: n + "proxy-ssl-verify", wantErrMatch: `must be "on" or "off"`},
		"proxy-ssl depth 0":                   {in: map[string]string{n + "proxy-ssl-verify-depth": "0"}, wantErrKey: n + "proxy-ssl-verify-depth"},
		"proxy-ssl name not a host":           {in: map[string]string{n + "proxy-ssl-name": "api internal"}, wantErrKey: n + "proxy-ssl-name"},
		"proxy-ssl secret not a name":         {in: map[string]string{n + "proxy-ssl-secret": "team-a/Upstream_CA"}, wantErrKey: n + "proxy-ssl-secret", wantReason: ReasonInvalidAnnotation},
		"proxy-ssl secret two slashes":        {in: map[string]string{n + "proxy-ssl-secret": "a/b/c"}, wantErrKey: n + "proxy-ssl-secret"},
		"upstream": {in: map[string]string{n + "backend-protocol": "http", n + "upstream-vhost": "Svc.Internal:8443", n + "proxy-connect-timeout": "5",
			n + "proxy-read-timeout": "120", n + "proxy-send-timeout": "30", n + "proxy-next-upstream-tries": "3"},
			want: Config{Upstream: Upstream{Protocol: "HTTP", Host: "svc.internal:8443", ConnectTimeout: 5, ReadTimeout: 120, SendTimeout: 30, Tries: 3}}},
		"auto http is http": {in: map[string]string{n + "backend-protocol": "AUTO_HTTP"}, want: Config{Upstream: Upstream{Protocol: "HTTP"}}},
		"fcgi refused":      {in: map[string]string{n + "backend-protocol": "FCGI"}, wantErrKey: n + "backend-protocol", wantReason: ReasonRefusedAnnotation},
		"server aliases lower-cased": {in: map[string]string{n + "server-alias": "Shop.Example.com, www.shop.example.com"},
			want: Config{Redirect: Redirect{Aliases: []string{"shop.example.com", "www.shop.example.com"}}}},
		"server alias must be a host": {in: map[string]string{n + "server-alias": "shop.example.com,not a host"}, wantErrKey: n + "server-alias", wantReason: ReasonInvalidAnnotation},
		"timeout with unit":           {in: map[string]string{n + "proxy-read-timeout": "60s"}, wantErrKey: n + "proxy-read-timeout"},
		// refused, unsupported, unknown
		"configuration snippet refused": {in: map[string]string{n + "configuration-snippet": "more_set_headers x;", n + "rewrite-target": "/"}, wantErrKey: n + "configuration-snippet", wantReason: ReasonRefusedAnnotation, wantErrMatch: "snippets inject"},
		"server snippet refused":        {in: map[string]string{n + "server-snippet": ""}, wantErrKey: n + "server-snippet", wantReason: ReasonRefusedAnnotation},
		"auth snippet refused":          {in: map[string]string{n + "auth-snippet": "x"}, wantErrKey: n + "auth-snippet", wantReason: ReasonRefusedAnnotation},
		"our prefix snippet refused":    {in: map[string]string{"portico.dev/server-snippet": "x"}, wantErrKey: "portico.dev/server-snippet", wantReason: ReasonRefusedAnnotation},
		"modsecurity refused":           {in: map[string]string{n + "enable-modsecurity": "true"}, wantErrKey: n + "enable-modsecurity", wantReason: ReasonRefusedAnnotation},
		"auth-url unsupported":          {in: map[string]string{n + "auth-url": "https://auth/"}, wantErrKey: n + "auth-url", wantReason: ReasonUnsupportedAnnotation},
		"first refused in key order":    {in: map[string]string{n + "server-snippet": "x", n + "auth-snippet": "y"}, wantErrKey: n + "auth-snippet"},
		"ignored and unknown warn": {in: map[string]string{n + "proxy-buffering": "on", "portico.dev/typo": "1"},
			want: Config{Warnings: []string{"annotation nginx.ingress.kubernetes.io/proxy-buffering is not supported by Portico and is ignored", "annotation portico.dev/typo is unknown and ignored"}}},
		"portico prefix wins":               {in: map[string]string{n + "limit-rps": "5", "portico.dev/limit-rps": "7"}, want: Config{Limits: Limits{RPS: 7}}},
		"portico invalid names portico key": {in: map[string]string{n + "limit-rps": "5", "portico.dev/limit-rps": "x"}, wantErrKey: "portico.dev/limit-rps"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMap(tc.in)
			if tc.wantErrKey != "" {
				var ae *Error
				if !errors.As(err, &ae) {
					t.Fatalf("error = %v, want an *Error for %s", err, tc.wantErrKey)
				}
				if ae.Annotation != tc.wantErrKey {
					t.Errorf("error names %s, want %s (%v)", ae.Annotation, tc.wantErrKey, err)
				}
				if tc.wantReason != "" && ae.Reason != tc.wantReason {
					t.Errorf("reason = %s, want %s", ae.Reason, tc.wantReason)
				}
				if !strings.Contains(err.Error(), tc.wantErrMatch) || !strings.Contains(err.Error(), tc.wantErrKey) {
					t.Errorf("error %q should name %s and contain %q", err, tc.wantErrKey, tc.wantErrMatch)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMap: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Every group parses on its own too, and the tables are well formed.
func TestGroupsAndDocs(t *testing.T) {
	c, err := CanaryGroup.ParseMap(map[string]string{n + "canary": "true", n + "canary-weight": "50"})
	if err != nil || c.Weight != 50 || !c.Enabled {
		t.Errorf("CanaryGroup.ParseMap = %+v, %v", c, err)
	}
	seen := map[string]bool{}
	for _, d := range Docs() {
		if seen[d.Name] {
			t.Errorf("annotation %s is in two tables", d.Name)
		}
		seen[d.Name] = true
		if d.Doc == "" {
			t.Errorf("annotation %s has no doc", d.Name)
		}
		if strings.HasSuffix(d.Name, "-snippet") || refused[d.Name] != "" || unsupported[d.Name] {
			t.Errorf("annotation %s is both supported and refused", d.Name)
		}
		if _, ok := ignored[d.Name]; ok {
			t.Errorf("annotation %s is both supported and ignored", d.Name)
		}
	}
}

// FuzzParse: parsing never panics, errors always name one of the input's
// keys, and every accepted value yields a snapshot-valid policy.
func FuzzParse(f *testing.F) {
	f.Add("canary", "true", "canary-weight", "10")
	f.Add("rewrite-target", "/$1", "use-regex", "true")
	f.Add("enable-cors", "true", "cors-allow-origin", "https://*.a.com")
	f.Add("configuration-snippet", "x", "limit-rps", "1")
	f.Add("upstream-hash-by", "$http_x", "affinity", "cookie")
	f.Add("allowlist-source-range", "10.0.0.0/8,::1", "proxy-body-size", "1g")
	f.Add("permanent-redirect", "https://a/", "permanent-redirect-code", "308")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{NginxPrefix + k1: v1, PorticoPrefix + k2: v2}
		c, err := ParseMap(m)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *Error: %v", err)
			}
			if _, ok := m[ae.Annotation]; !ok {
				t.Fatalf("error names %q, not an input key", ae.Annotation)
			}
			return
		}
		for _, o := range c.CORS.AllowOrigins {
			if snapshot.ValidOrigin(o) != nil {
				t.Fatalf("accepted origin %q is invalid in a snapshot", o)
			}
		}
		if c.Balancer.HashBy != "" && snapshot.ValidHashBy(c.Balancer.HashBy) != nil {
			t.Fatalf("accepted hash key %q", c.Balancer.HashBy)
		}
		if c.Redirect.URL != "" && (snapshot.ValidRedirectURL(c.Redirect.URL) != nil || c.Redirect.Code < 300 || c.Redirect.Code > 308) {
			t.Fatalf("accepted redirect %q %d", c.Redirect.URL, c.Redirect.Code)
		}
		if c.Canary.Weight < 0 || c.Canary.Weight > c.Canary.WeightTotal && c.Canary.Enabled {
			t.Fatalf("accepted weight %d of %d", c.Canary.Weight, c.Canary.WeightTotal)
		}
	})
}
