package snapshot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	tests := map[string]struct {
		payload   string
		partSize  int
		wantParts int
		tooLarge  bool
	}{
		"empty payload is one chunk":       {payload: "", partSize: 4, wantParts: 1},
		"fits in one part":                 {payload: "abcd", partSize: 4, wantParts: 1},
		"one byte over splits":             {payload: "abcde", partSize: 4, wantParts: 2},
		"exactly the maximum":              {payload: strings.Repeat("x", 4*MaxParts), partSize: 4, wantParts: MaxParts},
		"one byte over the maximum":        {payload: strings.Repeat("x", 4*MaxParts+1), partSize: 4, tooLarge: true},
		"multi-byte runes are never cut":   {payload: strings.Repeat("é€", 5), partSize: 6, wantParts: 5},
		"default part size":                {payload: strings.Repeat("y", DefaultPartSize+1), wantParts: 2},
		"part size below a rune is raised": {payload: "€€", partSize: 1, wantParts: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			chunks, m, err := Split([]byte(tc.payload), "v1-x", tc.partSize)
			if tc.tooLarge {
				var tl *TooLargeError
				if !errors.As(err, &tl) || tl.Parts != MaxParts+1 {
					t.Fatalf("err = %v, want TooLargeError with %d parts", err, MaxParts+1)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != tc.wantParts {
				t.Fatalf("%d chunks, want %d", len(chunks), tc.wantParts)
			}
			if got := string(bytes.Join(chunks, nil)); got != tc.payload {
				t.Fatalf("chunks join to %q", got)
			}
			for i, c := range chunks {
				if !utf8.Valid(c) {
					t.Errorf("chunk %d is not valid UTF-8: %q", i, c)
				}
			}
			if (m != nil) != (tc.wantParts > 1) {
				t.Fatalf("manifest %+v for %d parts", m, tc.wantParts)
			}
			if m == nil {
				return
			}
			parsed, err := ParseManifest(MarshalManifest(m))
			if err != nil || parsed.Parts() != tc.wantParts || parsed.Version != "v1-x" {
				t.Fatalf("manifest round trip: %+v, %v", parsed, err)
			}
			parts := make([]Part, 0, len(chunks)-1)
			for _, c := range chunks[1:] {
				parts = append(parts, Part{Version: "v1-x", Data: c})
			}
			got, err := parsed.Assemble(chunks[0], parts)
			if err != nil || string(got) != tc.payload {
				t.Fatalf("Assemble = %q, %v", got, err)
			}
		})
	}
}

func TestAssembleAllOrNothing(t *testing.T) {
	chunks, m, err := Split([]byte("0123456789ab"), "v1-new", 4)
	if err != nil || m.Parts() != 3 {
		t.Fatalf("Split: %v, %+v", err, m)
	}
	good := func() []Part {
		return []Part{{Version: "v1-new", Data: chunks[1]}, {Version: "v1-new", Data: chunks[2]}}
	}
	tests := map[string]struct {
		head   []byte
		parts  func() []Part
		errHas string
	}{
		"all parts":     {head: chunks[0], parts: good},
		"missing part":  {head: chunks[0], parts: func() []Part { p := good(); p[1] = Part{Missing: true}; return p }, errHas: "part 2 of 3 is missing"},
		"stale version": {head: chunks[0], parts: func() []Part { p := good(); p[0].Version = "v1-old"; return p }, errHas: `part 1 has version "v1-old"`},
		"right version, wrong bytes": {head: chunks[0], parts: func() []Part { p := good(); p[1].Data = []byte("zzzz"); return p },
			errHas: "part 2 does not match its hash"},
		"head altered": {head: []byte("x123"), parts: good, errHas: "head chunk"},
		"a part short": {head: chunks[0], parts: func() []Part { return good()[:1] }, errHas: "2 parts given"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := m.Assemble(tc.head, tc.parts())
			if tc.errHas == "" {
				if err != nil || string(got) != "0123456789ab" {
					t.Fatalf("Assemble = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrPartsIncomplete) || !strings.Contains(err.Error(), tc.errHas) || got != nil {
				t.Fatalf("Assemble = %q, %v; want nothing and an error with %q", got, err, tc.errHas)
			}
		})
	}
}

func TestParseManifestRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      "{",
		"no version":    `{"sha256":["a","b"]}`,
		"one part":      `{"version":"v","sha256":["a"]}`,
		"too many":      `{"version":"v","sha256":["1","2","3","4","5","6","7","8","9"]}`,
		"unknown field": `{"version":"v","sha256":["a","b"],"x":1}`,
	} {
		if _, err := ParseManifest([]byte(in)); err == nil {
			t.Errorf("%s: ParseManifest succeeded", name)
		}
	}
}
