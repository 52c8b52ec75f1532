package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A ConfigMap holds at most 1 MiB. An encoded snapshot larger than the part
// size is split: the head ConfigMap (the instance's snapshot ConfigMap)
// holds chunk 0 under ConfigMapKey plus a Manifest under ManifestKey, and
// part ConfigMaps PartName(head, i) for i in 1..n-1 hold chunk i under
// PartKey and the version they belong to under PartVersionKey. The writer
// writes the parts first and the head last; a reader that sees a head
// accepts it only when every part carries the head's version and its hash.
const (
	// ManifestKey holds the Manifest in a split head ConfigMap. Its absence
	// means ConfigMapKey holds the whole payload.
	ManifestKey = "manifest.json"
	// PartKey holds a chunk in a part ConfigMap.
	PartKey = "part"
	// PartVersionKey holds, in a part ConfigMap, the Version of the
	// snapshot the chunk belongs to (in data, so a mounted copy has it too).
	PartVersionKey = "version"
	// MaxParts caps the ConfigMaps of one snapshot (head included), so the
	// gateway pods' Role can name every part ConfigMap in advance.
	MaxParts = 8
	// DefaultPartSize is the largest chunk per ConfigMap: room is left
	// under the 1 MiB cap for the manifest, keys and metadata.
	DefaultPartSize = 900 << 10
)

// Manifest describes a split payload; it lives in the head ConfigMap.
type Manifest struct {
	// Version is the snapshot's Version; every part must carry it.
	Version string `json:"version"`
	// SHA256 has the hex SHA-256 of each chunk, head (chunk 0) first; its
	// length is the part count.
	SHA256 []string `json:"sha256"`
}

// Parts is the number of chunks, head included.
func (m *Manifest) Parts() int { return len(m.SHA256) }

// PartName is the name of the ConfigMap that holds chunk i (i >= 1) of the
// snapshot whose head ConfigMap is head.
func PartName(head string, i int) string { return fmt.Sprintf("%s-%d", head, i) }

// TooLargeError says an encoded snapshot needs more than MaxParts parts.
type TooLargeError struct {
	Bytes, PartSize, Parts int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("encoded snapshot is %d bytes: it needs %d ConfigMaps of %d bytes, more than the maximum of %d",
		e.Bytes, e.Parts, e.PartSize, MaxParts)
}

// Split cuts an encoded payload into chunks of at most partSize bytes
// (DefaultPartSize when partSize <= 0), never inside a UTF-8 sequence, since
// ConfigMap data are strings. One chunk means no split: the manifest is nil.
// More than MaxParts chunks is a *TooLargeError.
func Split(encoded []byte, version string, partSize int) ([][]byte, *Manifest, error) {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	if partSize < utf8.UTFMax {
		partSize = utf8.UTFMax // room for any rune
	}
	var chunks [][]byte
	for rest := encoded; len(rest) > 0 || len(chunks) == 0; {
		cut := min(partSize, len(rest))
		for cut < len(rest) && cut > 0 && !utf8.RuneStart(rest[cut]) {
			cut--
		}
		chunks = append(chunks, rest[:cut])
		rest = rest[cut:]
	}
	if len(chunks) > MaxParts {
		return nil, nil, &TooLargeError{Bytes: len(encoded), PartSize: partSize, Parts: len(chunks)}
	}
	if len(chunks) == 1 {
		return chunks, nil, nil
	}
	m := &Manifest{Version: version}
	for _, c := range chunks {
		m.SHA256 = append(m.SHA256, chunkHash(c))
	}
	return chunks, m, nil
}

func chunkHash(c []byte) string {
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:])
}

// MarshalManifest returns the JSON stored under ManifestKey.
func MarshalManifest(m *Manifest) []byte {
	b, _ := json.Marshal(m) // a struct of strings always marshals
	return b
}

// ParseManifest reads the JSON stored under ManifestKey.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("snapshot manifest: %w", err)
	}
	if m.Version == "" || m.Parts() < 2 || m.Parts() > MaxParts {
		return nil, fmt.Errorf("snapshot manifest: version %q with %d parts (want a version and 2 to %d parts)", m.Version, m.Parts(), MaxParts)
	}
	return &m, nil
}

// Part is one part ConfigMap's content as a reader found it; Missing is set
// when the ConfigMap (or its mounted copy) does not exist.
type Part struct {
	Missing bool
	Version string
	Data    []byte
}

// ErrPartsIncomplete wraps every Assemble failure: a part is missing, from
// another version, or does not match its hash. Readers keep their current
// snapshot and retry, since the writer may still be writing parts.
var ErrPartsIncomplete = errors.New("snapshot parts incomplete")

// Assemble joins the head chunk and parts[0..] (chunks 1..n-1) of the
// payload m describes. It accepts all or nothing: every part must exist,
// carry m.Version and match its hash.
func (m *Manifest) Assemble(head []byte, parts []Part) ([]byte, error) {
	if len(parts) != m.Parts()-1 {
		return nil, fmt.Errorf("%w: %d parts given, manifest has %d", ErrPartsIncomplete, len(parts)+1, m.Parts())
	}
	if chunkHash(head) != m.SHA256[0] {
		return nil, fmt.Errorf("%w: head chunk does not match its hash", ErrPartsIncomplete)
	}
	out := bytes.Clone(head)
	for i, p := range parts {
		switch {
		case p.Missing:
			return nil, fmt.Errorf("%w: part %d of %d is missing", ErrPartsIncomplete, i+1, m.Parts())
		case p.Version != m.Version:
			return nil, fmt.Errorf("%w: part %d has version %q, head has %q", ErrPartsIncomplete, i+1, p.Version, m.Version)
		case chunkHash(p.Data) != m.SHA256[i+1]:
			return nil, fmt.Errorf("%w: part %d does not match its hash", ErrPartsIncomplete, i+1)
		}
		out = append(out, p.Data...)
	}
	return out, nil
}
