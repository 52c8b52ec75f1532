package podflags

import (
	"strings"
	"testing"
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

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"configmap without namespace": {[]string{"--snapshot-configmap=cm"}, "--snapshot-namespace is required"},
		"no source at all":            {[]string{"--snapshot-file="}, "one of --snapshot-configmap or --snapshot-file"},
		"stray argument":              {[]string{"--instance=x", "extra"}, "unexpected arguments"},
		"unknown flag":                {[]string{"--reload-nginx"}, "flag provided but not defined"},
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
