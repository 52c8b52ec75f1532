// Package podflags is the single source of truth for gatewaypod's command
// line: controllers/render writes a Deployment with Flags.Args, and gatewaypod
// parses the same flags with Parse, so an end-to-end test can run exactly the
// command the operator wrote.
package podflags

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables the Deployment sets through the downward API.
const (
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvPodIP        = "POD_IP"
)

// Defaults for the ports and the mounted snapshot.
const (
	DefaultHTTPPort     = 8080
	DefaultHealthPort   = 8081
	DefaultSnapshotDir  = "/etc/portico/snapshot"
	DefaultSnapshotFile = DefaultSnapshotDir + "/snapshot.json"
	// DefaultSnapshotPartsDir is where the part ConfigMaps of a split
	// snapshot are mounted, one directory per part (see SnapshotPartFile).
	DefaultSnapshotPartsDir = "/etc/portico/snapshot-parts"
	// DefaultHTTPSPort is the port the Deployment passes to --https-address.
	DefaultHTTPSPort = 8443
	// DefaultTLSDir is where the instance TLS Secret is mounted.
	DefaultTLSDir = "/etc/portico/tls"
)

// The --http1-server choices.
const (
	HTTP1ServerPortico = "portico"
	HTTP1ServerStdlib  = "stdlib"
	DefaultHTTP1Server = HTTP1ServerPortico
)

// UseFastServer reports whether the plain listener runs proxy.FastServer.
func (f *Flags) UseFastServer() bool {
	s := f.HTTP1Server
	if s == "" {
		s = DefaultHTTP1Server
	}
	return s == HTTP1ServerPortico
}

// Flags configures one gatewaypod process.
type Flags struct {
	// HTTPAddress is where the proxy listens for client traffic. The
	// Deployment passes "$(POD_IP):8080" so several fake pods can share one
	// network namespace in tests; the kubelet expands $(POD_IP).
	HTTPAddress string
	// HealthAddress serves /healthz, /readyz and /metrics.
	HealthAddress string
	// SnapshotNamespace and SnapshotConfigMap name the ConfigMap watched
	// through the API; a change is live in about a second.
	SnapshotNamespace string
	SnapshotConfigMap string
	// SnapshotFile is the mounted copy of the ConfigMap, read once at boot so
	// the pod can serve before the API answers.
	SnapshotFile string
	// SnapshotPartsDir holds the mounted part ConfigMaps of a split snapshot
	// (SnapshotPartFile); "" means a split snapshot is read through the API only.
	SnapshotPartsDir string
	// Instance is the GatewayConfig name, used in logs and metrics labels.
	Instance string

	// The fields below tune the data plane. Their zero value means "the
	// built-in default" and Args leaves them out, so a Deployment written by
	// an operator that does not know them keeps its exact command line.

	// TrustedProxies is a comma-separated list of CIDRs whose X-Forwarded-*
	// and X-Real-IP headers are believed (a load balancer in front of the
	// pods). Empty: trust no one, always replace them.
	TrustedProxies string
	// UpstreamConnectTimeout bounds the TCP connect to an endpoint (default 5s).
	UpstreamConnectTimeout time.Duration
	// UpstreamReadTimeout bounds the wait for a response header and between
	// two reads of a response body (default 60s).
	UpstreamReadTimeout time.Duration
	// UpstreamSendTimeout bounds each write of a request body (default 60s).
	UpstreamSendTimeout time.Duration
	// UpstreamRetries is how many other endpoints an idempotent request is
	// tried on when a connection fails: 0 means the default (1), negative none.
	UpstreamRetries int
	// ClientHeaderTimeout bounds reading a client's request header (default 10s).
	ClientHeaderTimeout time.Duration
	// ClientIdleTimeout closes client keep-alive connections idle for longer
	// (default 120s).
	ClientIdleTimeout time.Duration
	// MaxHeaderBytes caps a client's request line and headers (default 64 KiB).
	MaxHeaderBytes int
	// MaxBodyBytes refuses larger request bodies with 413 (default: no limit).
	MaxBodyBytes int64
	// HTTP1Server picks the HTTP/1.1 server of the plain listener:
	// HTTP1ServerPortico (the fast path of proxy.FastServer, falling back to
	// net/http for everything unusual) or HTTP1ServerStdlib; "" is the
	// default, DefaultHTTP1Server.
	HTTP1Server string
	// AdminAddress, when set, serves /debug/snapshot (and pprof when
	// EnablePprof) on a separate listener; keep it on loopback.
	AdminAddress string
	// EnablePprof adds /debug/pprof/ to the admin listener.
	EnablePprof bool
	// HTTPSAddress, when set, terminates TLS there ("$(POD_IP):8443") with
	// the snapshot's certificates; HTTP/2 is offered by ALPN.
	HTTPSAddress string
	// TLSDir is the mounted instance TLS Secret, read at boot (and polled
	// when TLSSecret is empty); "" means DefaultTLSDir.
	TLSDir string
	// TLSSecret names the instance TLS Secret in SnapshotNamespace, watched
	// through the API (get/list/watch on that one name).
	TLSSecret string

	// AccessLog is "off", "sampled" or "full": JSON lines on stdout, one per
	// (sampled) request. "" means off.
	AccessLog string
	// AccessLogSampleRate is the share of requests logged when AccessLog is
	// "sampled", in (0, 1]; 0 means DefaultAccessLogSampleRate.
	AccessLogSampleRate float64
	// AccessLogFields is a comma-separated list of AccessLogFieldNames, in
	// output order; "" means DefaultAccessLogFields.
	AccessLogFields string
	// DisableHTTP2 stops the TLS listener offering h2 by ALPN (--http2=false);
	// clients then speak HTTP/1.1.
	DisableHTTP2 bool

	// PassiveMaxFailures is how many consecutive connect errors or 5xx
	// answers eject an endpoint: 0 means the default (5), negative turns
	// passive health off.
	PassiveMaxFailures int
	// PassiveEjection is how long the first ejection lasts, doubling on
	// each further one without a success in between (0: 10s).
	PassiveEjection time.Duration
	// PassiveMaxEjection caps the ejection time (0: 10 × PassiveEjection).
	PassiveMaxEjection time.Duration
}

// Values of --access-log.
const (
	AccessLogOff     = "off"
	AccessLogSampled = "sampled"
	AccessLogFull    = "full"
)

// DefaultAccessLogSampleRate is the share of requests logged by
// --access-log=sampled without --access-log-sample-rate.
const DefaultAccessLogSampleRate = 0.01

// AccessLogFieldNames are the fields --access-log-fields may name. There is
// deliberately no header field: Authorization and Cookie are never logged.
// "query" is opt-in only, as query strings often carry tokens.
var AccessLogFieldNames = []string{
	"time", "remote", "method", "host", "path", "query", "status", "bytes", "duration_ms",
	"backend", "endpoint", "request_id", "user_agent", "protocol",
}

// DefaultAccessLogFields are logged when --access-log-fields is empty.
var DefaultAccessLogFields = []string{
	"time", "remote", "method", "host", "path", "status", "bytes", "duration_ms", "backend", "request_id",
}

// AccessLogEnabled reports whether any request is logged.
func (f Flags) AccessLogEnabled() bool {
	return f.AccessLog != "" && f.AccessLog != AccessLogOff
}

// AccessLogRate is the sampling rate in effect: 1 for "full", the flag or
// its default for "sampled", 0 when off.
func (f Flags) AccessLogRate() float64 {
	switch f.AccessLog {
	case AccessLogFull:
		return 1
	case AccessLogSampled:
		if f.AccessLogSampleRate == 0 {
			return DefaultAccessLogSampleRate
		}
		return f.AccessLogSampleRate
	}
	return 0
}

// AccessLogFieldList parses AccessLogFields (DefaultAccessLogFields when
// empty): known names only, no duplicates.
func (f Flags) AccessLogFieldList() ([]string, error) {
	if strings.TrimSpace(f.AccessLogFields) == "" {
		return append([]string(nil), DefaultAccessLogFields...), nil
	}
	var out []string
	for _, s := range strings.Split(f.AccessLogFields, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return nil, fmt.Errorf("--access-log-fields: empty field name in %q", f.AccessLogFields)
		case !slices.Contains(AccessLogFieldNames, s):
			return nil, fmt.Errorf("--access-log-fields: unknown field %q (known: %s)", s, strings.Join(AccessLogFieldNames, ","))
		case slices.Contains(out, s):
			return nil, fmt.Errorf("--access-log-fields: %q listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// TLSDirectory is TLSDir or its default.
func (f Flags) TLSDirectory() string {
	if f.TLSDir == "" {
		return DefaultTLSDir
	}
	return f.TLSDir
}

// Prefixes parses TrustedProxies.
func (f Flags) Prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(f.TrustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR or address: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Args renders f as the container args the Deployment carries.
func (f Flags) Args() []string {
	args := []string{
		"--http-address=" + f.HTTPAddress,
		"--health-address=" + f.HealthAddress,
		"--snapshot-namespace=" + f.SnapshotNamespace,
		"--snapshot-configmap=" + f.SnapshotConfigMap,
		"--snapshot-file=" + f.SnapshotFile,
		"--instance=" + f.Instance,
	}
	add := func(name string, set bool, v string) {
		if set {
			args = append(args, "--"+name+"="+v)
		}
	}
	add("snapshot-parts-dir", f.SnapshotPartsDir != "", f.SnapshotPartsDir)
	add("trusted-proxies", f.TrustedProxies != "", f.TrustedProxies)
	add("upstream-connect-timeout", f.UpstreamConnectTimeout != 0, f.UpstreamConnectTimeout.String())
	add("upstream-read-timeout", f.UpstreamReadTimeout != 0, f.UpstreamReadTimeout.String())
	add("upstream-send-timeout", f.UpstreamSendTimeout != 0, f.UpstreamSendTimeout.String())
	add("upstream-retries", f.UpstreamRetries != 0, strconv.Itoa(f.UpstreamRetries))
	add("client-header-timeout", f.ClientHeaderTimeout != 0, f.ClientHeaderTimeout.String())
	add("client-idle-timeout", f.ClientIdleTimeout != 0, f.ClientIdleTimeout.String())
	add("max-header-bytes", f.MaxHeaderBytes != 0, strconv.Itoa(f.MaxHeaderBytes))
	add("max-body-bytes", f.MaxBodyBytes != 0, strconv.FormatInt(f.MaxBodyBytes, 10))
	add("http1-server", f.HTTP1Server != "", f.HTTP1Server)
	add("admin-address", f.AdminAddress != "", f.AdminAddress)
	add("enable-pprof", f.EnablePprof, "true")
	add("https-address", f.HTTPSAddress != "", f.HTTPSAddress)
	add("tls-dir", f.TLSDir != "", f.TLSDir)
	add("tls-secret", f.TLSSecret != "", f.TLSSecret)
	add("access-log", f.AccessLog != "", f.AccessLog)
	add("access-log-sample-rate", f.AccessLogSampleRate != 0, strconv.FormatFloat(f.AccessLogSampleRate, 'g', -1, 64))
	add("access-log-fields", f.AccessLogFields != "", f.AccessLogFields)
	add("http2", f.DisableHTTP2, "false")
	add("passive-health-max-failures", f.PassiveMaxFailures != 0, strconv.Itoa(f.PassiveMaxFailures))
	add("passive-health-ejection", f.PassiveEjection != 0, f.PassiveEjection.String())
	add("passive-health-max-ejection", f.PassiveMaxEjection != 0, f.PassiveMaxEjection.String())
	return args
}

// Parse reads the args written by Args (and nothing else).
func Parse(args []string) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet("gatewaypod", flag.ContinueOnError)
	fs.StringVar(&f.HTTPAddress, "http-address", fmt.Sprintf(":%d", DefaultHTTPPort), "address for client traffic")
	fs.StringVar(&f.HealthAddress, "health-address", fmt.Sprintf(":%d", DefaultHealthPort), "address for /healthz, /readyz and /metrics")
	fs.StringVar(&f.SnapshotNamespace, "snapshot-namespace", "", "namespace of the snapshot ConfigMap")
	fs.StringVar(&f.SnapshotConfigMap, "snapshot-configmap", "", "name of the snapshot ConfigMap to watch through the API")
	fs.StringVar(&f.SnapshotFile, "snapshot-file", DefaultSnapshotFile, "mounted snapshot used at boot until the API answers")
	fs.StringVar(&f.SnapshotPartsDir, "snapshot-parts-dir", "", "mounted part ConfigMaps of a split snapshot, used at boot (empty: API only)")
	fs.StringVar(&f.Instance, "instance", "", "GatewayConfig name, for logs and metrics")
	fs.StringVar(&f.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
	fs.DurationVar(&f.UpstreamConnectTimeout, "upstream-connect-timeout", 0, "TCP connect timeout to endpoints (0: 5s)")
	fs.DurationVar(&f.UpstreamReadTimeout, "upstream-read-timeout", 0, "wait for a response header / between body reads (0: 60s)")
	fs.DurationVar(&f.UpstreamSendTimeout, "upstream-send-timeout", 0, "timeout of each request body write (0: 60s)")
	fs.IntVar(&f.UpstreamRetries, "upstream-retries", 0, "other endpoints tried on connection failure, idempotent requests only (0: 1, <0: none)")
	fs.DurationVar(&f.ClientHeaderTimeout, "client-header-timeout", 0, "timeout to read a client's request header (0: 10s)")
	fs.DurationVar(&f.ClientIdleTimeout, "client-idle-timeout", 0, "close idle client keep-alive connections after (0: 120s)")
	fs.IntVar(&f.MaxHeaderBytes, "max-header-bytes", 0, "largest request header accepted (0: 64 KiB)")
	fs.Int64Var(&f.MaxBodyBytes, "max-body-bytes", 0, "largest request body accepted, 413 above (0: no limit)")
	fs.StringVar(&f.HTTP1Server, "http1-server", "", "HTTP/1.1 server of the plain listener: portico (own loop for plain requests, net/http for the rest; half the idle memory) or stdlib (net/http for everything) (empty: "+DefaultHTTP1Server+")")
	fs.StringVar(&f.AdminAddress, "admin-address", "", "address for /debug/snapshot and optional pprof (empty: off)")
	fs.BoolVar(&f.EnablePprof, "enable-pprof", false, "serve /debug/pprof/ on --admin-address")
	fs.StringVar(&f.HTTPSAddress, "https-address", "", "address for TLS client traffic, HTTP/1.1 and HTTP/2 (empty: off)")
	fs.StringVar(&f.TLSDir, "tls-dir", "", "mounted instance TLS Secret (empty: "+DefaultTLSDir+")")
	fs.StringVar(&f.TLSSecret, "tls-secret", "", "instance TLS Secret in --snapshot-namespace to watch through the API")
	fs.StringVar(&f.AccessLog, "access-log", "", "access log to stdout as JSON lines: off, sampled or full (empty: off)")
	fs.Float64Var(&f.AccessLogSampleRate, "access-log-sample-rate", 0, "share of requests logged by --access-log=sampled, in (0,1] (0: 0.01)")
	fs.StringVar(&f.AccessLogFields, "access-log-fields", "", "comma-separated access log fields from "+
		strings.Join(AccessLogFieldNames, ",")+" (empty: "+strings.Join(DefaultAccessLogFields, ",")+")")
	fs.IntVar(&f.PassiveMaxFailures, "passive-health-max-failures", 0, "consecutive connect errors or 5xx that eject an endpoint (0: 5, <0: off)")
	fs.DurationVar(&f.PassiveEjection, "passive-health-ejection", 0, "first ejection time, doubled on each further one (0: 10s)")
	fs.DurationVar(&f.PassiveMaxEjection, "passive-health-max-ejection", 0, "longest ejection time (0: 10 × --passive-health-ejection)")
	http2 := true
	fs.BoolVar(&http2, "http2", true, "offer HTTP/2 by ALPN on --https-address")
	if err := fs.Parse(args); err != nil {
		return Flags{}, err
	}
	f.DisableHTTP2 = !http2
	if fs.NArg() > 0 {
		return Flags{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var errs []error
	if f.SnapshotConfigMap != "" && f.SnapshotNamespace == "" {
		errs = append(errs, errors.New("--snapshot-namespace is required with --snapshot-configmap"))
	}
	if f.SnapshotConfigMap == "" && f.SnapshotFile == "" {
		errs = append(errs, errors.New("one of --snapshot-configmap or --snapshot-file is required"))
	}
	if _, err := f.Prefixes(); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]time.Duration{
		"upstream-connect-timeout": f.UpstreamConnectTimeout, "upstream-read-timeout": f.UpstreamReadTimeout,
		"upstream-send-timeout": f.UpstreamSendTimeout, "client-header-timeout": f.ClientHeaderTimeout,
		"client-idle-timeout": f.ClientIdleTimeout, "passive-health-ejection": f.PassiveEjection,
		"passive-health-max-ejection": f.PassiveMaxEjection,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("--%s must not be negative", name))
		}
	}
	if f.MaxHeaderBytes < 0 || f.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("--max-header-bytes and --max-body-bytes must not be negative"))
	}
	if f.TLSSecret != "" && f.SnapshotNamespace == "" {
		errs = append(errs, errors.New("--snapshot-namespace is required with --tls-secret"))
	}
	switch f.HTTP1Server {
	case "", HTTP1ServerPortico, HTTP1ServerStdlib:
	default:
		errs = append(errs, fmt.Errorf("--http1-server must be %s or %s, not %q", HTTP1ServerPortico, HTTP1ServerStdlib, f.HTTP1Server))
	}
	if f.EnablePprof && f.AdminAddress == "" {
		errs = append(errs, errors.New("--enable-pprof needs --admin-address"))
	}
	switch f.AccessLog {
	case "", AccessLogOff, AccessLogSampled, AccessLogFull:
	default:
		errs = append(errs, fmt.Errorf("--access-log must be %s, %s or %s, not %q", AccessLogOff, AccessLogSampled, AccessLogFull, f.AccessLog))
	}
	if r := f.AccessLogSampleRate; math.IsNaN(r) || r < 0 || r > 1 {
		errs = append(errs, errors.New("--access-log-sample-rate must be in (0, 1]"))
	} else if r != 0 && f.AccessLog != AccessLogSampled {
		errs = append(errs, errors.New("--access-log-sample-rate needs --access-log=sampled"))
	}
	if _, err := f.AccessLogFieldList(); err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

// SnapshotPartFile is the path, relative to SnapshotPartsDir, of key
// (snapshot.PartKey or snapshot.PartVersionKey) of part i of a split
// snapshot. The Deployment mounts the parts this way and gatewaypod reads them.
func SnapshotPartFile(i int, key string) string {
	return strconv.Itoa(i) + "/" + key
}

// AnnotationSnapshotVersion is set by each gatewaypod on its own Pod to the
// snapshot version it serves; the controller counts ready pods carrying the
// current version to decide that the instance is Programmed.
const AnnotationSnapshotVersion = "portico.dev/snapshot-version"
