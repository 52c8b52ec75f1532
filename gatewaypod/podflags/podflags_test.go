package podflags

import (
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
		AdminAddress: "127.0.0.1:9", EnablePprof: true,
		HTTPSAddress: ":3", TLSDir: "/tls", TLSSecret: "gw-tls", SnapshotNamespace: "ns"}
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
