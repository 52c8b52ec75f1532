package podflags

import (
	"encoding/json"
	"unicode/utf8"
)

// AnnotationSnapshotRefused is set by a gatewaypod on its own Pod when it
// refuses a snapshot payload (it does not decode, fails validation, or the
// router cannot be built) and keeps serving its last good snapshot. The value
// is a SnapshotRefusal in JSON. The pod removes the annotation as soon as it
// sees a valid payload for the snapshot it serves or a new one it applies,
// so the operator reports the pods' current state, not their history.
const AnnotationSnapshotRefused = "portico.dev/snapshot-refused"

// MaxRefusalMessage bounds SnapshotRefusal.Message, in bytes, so that the
// annotation stays small whatever error the payload caused.
const MaxRefusalMessage = 256

// SnapshotRefusal is the value of AnnotationSnapshotRefused. It carries no
// payload bytes: the snapshot ConfigMap holds no key material, and the
// message is an error text cut to MaxRefusalMessage.
type SnapshotRefusal struct {
	// Version is the refused snapshot's version, "" when it did not decode.
	Version string `json:"version,omitempty"`
	// Reason is a source reason, e.g. "Invalid" or "ApplyFailed".
	Reason string `json:"reason"`
	// Message says why, for a human.
	Message string `json:"message,omitempty"`
}

// Encode returns the annotation value, with Message and Version bounded.
func (r SnapshotRefusal) Encode() string {
	r.Message = truncate(r.Message, MaxRefusalMessage)
	r.Version = truncate(r.Version, 64)
	b, _ := json.Marshal(r) // strings only: cannot fail
	return string(b)
}

// ParseSnapshotRefusal decodes an AnnotationSnapshotRefused value.
func ParseSnapshotRefusal(s string) (SnapshotRefusal, error) {
	var r SnapshotRefusal
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
