package podflags

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSnapshotRefusalEncode(t *testing.T) {
	tests := map[string]struct {
		in      SnapshotRefusal
		wantMsg string
	}{
		"short":      {SnapshotRefusal{Version: "v1-abc", Reason: "Invalid", Message: "unexpected EOF"}, "unexpected EOF"},
		"no version": {SnapshotRefusal{Reason: "Invalid", Message: "bad"}, "bad"},
		"long":       {SnapshotRefusal{Reason: "ApplyFailed", Message: strings.Repeat("x", 1000)}, strings.Repeat("x", MaxRefusalMessage-3) + "..."},
		"multibyte":  {SnapshotRefusal{Reason: "Invalid", Message: strings.Repeat("é", 200)}, strings.Repeat("é", (MaxRefusalMessage-3)/2) + "..."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			enc := tc.in.Encode()
			got, err := ParseSnapshotRefusal(enc)
			if err != nil {
				t.Fatalf("ParseSnapshotRefusal(%q): %v", enc, err)
			}
			if got.Reason != tc.in.Reason || got.Version != tc.in.Version || got.Message != tc.wantMsg {
				t.Errorf("round trip = %+v, want reason %q version %q message %q", got, tc.in.Reason, tc.in.Version, tc.wantMsg)
			}
			if !utf8.ValidString(got.Message) || len(got.Message) > MaxRefusalMessage {
				t.Errorf("message of %d bytes, valid UTF-8 %t", len(got.Message), utf8.ValidString(got.Message))
			}
		})
	}
	if _, err := ParseSnapshotRefusal("not json"); err == nil {
		t.Error("ParseSnapshotRefusal(not json): want an error")
	}
}
