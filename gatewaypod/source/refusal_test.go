package source

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRefusedServing checks the hooks the pod reports its state through:
// each refusal once, and Serving for every valid payload of the served
// version, so a refusal followed by the good payload again is over.
func TestRefusedServing(t *testing.T) {
	vA, a := sealed("a")
	vB, b := sealed("b")
	var events []string
	s, rec, _ := newSource(t, Options{
		File: "unused",
		Refused: func(r Refusal) {
			events = append(events, "refused "+r.Reason+" "+r.Version)
		},
		Serving: func(v string) { events = append(events, "serving "+v) },
	})
	rec.failFor[vB] = true

	s.Offer(OriginConfigMap, a)
	s.Offer(OriginConfigMap, a[:len(a)/2]) // truncated
	s.Offer(OriginConfigMap, a[:len(a)/2]) // same bytes: reported once
	s.Offer(OriginConfigMap, a)            // repaired: same version, over
	s.Offer(OriginConfigMap, b)            // the router refuses it
	s.Offer(OriginConfigMap, a)
	want := []string{
		"serving " + vA,
		"refused " + ReasonInvalid + " ",
		"serving " + vA,
		"refused " + ReasonApplyFailed + " " + vB,
		"serving " + vA,
	}
	if d := cmp.Diff(want, events); d != "" {
		t.Errorf("hook calls (-want +got):\n%s", d)
	}
}
