package podflags

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgsRoundTrip(t *testing.T) {
	want := Flags{HTTPAddress: "$(POD_IP):8080", HealthAddress: "$(POD_IP):8081", SnapshotNamespace: "ns",
		SnapshotConfigMap: "cm", SnapshotFile: DefaultSnapshotFile, Instance: "gw"}
	got, err := Parse(want.Args())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// TestArgsRoundTripTuning: the data-plane flags round-trip too, and are left
// out of Args when zero (so the operator's Deployment does not change).
func TestArgsRoundTripTuning(t *testing.T) {
	want := Flags{HTTPAddress: ":1", HealthAddress: ":2", SnapshotFile: "/f",
		TrustedProxies: "10.0.0.0/8,192.0.2.1", UpstreamConnectTimeout: time.Second, UpstreamReadTimeout: 2 * time.Second,
		UpstreamSendTimeout: 3 * time.Second, UpstreamRetries: -1, ClientHeaderTimeout: 4 * time.Second,
		ClientIdleTimeout: 5 * time.Second, MaxHeaderBytes: 8192, MaxBodyBytes: 1 << 20,
		AdminAddress: "127.0.0.1:9", EnablePprof: true, HTTP1Server: HTTP1ServerStdlib,
		HTTPSAddress: ":3", TLSDir: "/tls", SnapshotPartsDir: "/parts", TLSSecret: "gw-tls", SnapshotNamespace: "ns",
		AccessLog: AccessLogSampled, AccessLogSampleRate: 0.125, AccessLogFields: "time,status,query", DisableHTTP2: true,
		PassiveMaxFailures: -1, PassiveEjection: 3 * time.Second, PassiveMaxEjection: time.Minute}
	got, err := Parse(want.Args())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	p, err := got.Prefixes()
	if err != nil || len(p) != 2 || p[1].String() != "192.0.2.1/32" {
		t.Errorf("Prefixes = %v, %v", p, err)
	}
	if n := len(Flags{}.Args()); n != 6 {
		t.Errorf("zero Flags render %d args, want the 6 original ones", n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"configmap without namespace":  {[]string{"--snapshot-configmap=cm"}, "--snapshot-namespace is required"},
		"no source at all":             {[]string{"--snapshot-file="}, "one of --snapshot-configmap or --snapshot-file"},
		"stray argument":               {[]string{"--instance=x", "extra"}, "unexpected arguments"},
		"unknown flag":                 {[]string{"--reload-nginx"}, "flag provided but not defined"},
		"bad cidr":                     {[]string{"--trusted-proxies=10.0.0.0/33"}, "--trusted-proxies"},
		"negative timeout":             {[]string{"--upstream-read-timeout=-1s"}, "must not be negative"},
		"pprof without admin":          {[]string{"--enable-pprof"}, "needs --admin-address"},
		"tls secret without namespace": {[]string{"--tls-secret=s"}, "--snapshot-namespace is required with --tls-secret"},
		"bad access log mode":          {[]string{"--access-log=verbose"}, "--access-log must be"},
		"unknown HTTP/1.1 server":      {[]string{"--http1-server=fasthttp"}, "--http1-server must be portico or stdlib"},
		"sample rate above one":        {[]string{"--access-log=sampled", "--access-log-sample-rate=1.5"}, "in (0, 1]"},
		"negative sample rate":         {[]string{"--access-log=sampled", "--access-log-sample-rate=-0.1"}, "in (0, 1]"},
		"sample rate without sampled":  {[]string{"--access-log=full", "--access-log-sample-rate=0.5"}, "needs --access-log=sampled"},
		"unknown access log field":     {[]string{"--access-log=full", "--access-log-fields=time,authorization"}, "unknown field"},
		"duplicate access log field":   {[]string{"--access-log=full", "--access-log-fields=time,time"}, "listed twice"},
		"empty access log field":       {[]string{"--access-log=full", "--access-log-fields=time,,path"}, "empty field name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestAccessLogFlags: defaults when unset, and the rate and fields in effect.
func TestAccessLogFlags(t *testing.T) {
	f, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.AccessLogEnabled() || f.AccessLogRate() != 0 || f.DisableHTTP2 {
		t.Errorf("defaults: enabled=%v rate=%v disableHTTP2=%v", f.AccessLogEnabled(), f.AccessLogRate(), f.DisableHTTP2)
	}
	if fields, _ := f.AccessLogFieldList(); strings.Join(fields, ",") != strings.Join(DefaultAccessLogFields, ",") ||
		slices.Contains(fields, "query") {
		t.Errorf("default fields = %v", fields)
	}
	f, err = Parse([]string{"--access-log=sampled"})
	if err != nil || !f.AccessLogEnabled() || f.AccessLogRate() != DefaultAccessLogSampleRate {
		t.Errorf("sampled: %+v %v rate=%v", f, err, f.AccessLogRate())
	}
	f, err = Parse([]string{"--access-log=full", "--access-log-fields= status , path", "--http2=false"})
	fields, _ := f.AccessLogFieldList()
	if err != nil || f.AccessLogRate() != 1 || strings.Join(fields, ",") != "status,path" || !f.DisableHTTP2 {
		t.Errorf("full: %+v %v fields=%v", f, err, fields)
	}
	if f, err := Parse([]string{"--access-log=off", "--http2=true"}); err != nil || f.AccessLogEnabled() || f.DisableHTTP2 {
		t.Errorf("off: %+v %v", f, err)
	}
	if got := (Flags{DisableHTTP2: true}).Args(); got[len(got)-1] != "--http2=false" {
		t.Errorf("Args = %v", got)
	}
}

func TestUseFastServer(t *testing.T) {
	for in, want := range map[string]bool{"": DefaultHTTP1Server == HTTP1ServerPortico,
		HTTP1ServerPortico: true, HTTP1ServerStdlib: false} {
		if got := (&Flags{HTTP1Server: in}).UseFastServer(); got != want {
			t.Errorf("--http1-server=%q: UseFastServer %v, want %v", in, got, want)
		}
	}
}
