package snapshot

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// CompressThreshold is the size of canonical JSON above which Encode
// compresses. Small snapshots stay readable with kubectl.
const CompressThreshold = 256 << 10

// MaxDecodedBytes bounds what a compressed payload may expand to, so a
// corrupt or hostile ConfigMap cannot exhaust gatewaypod's memory.
const MaxDecodedBytes = 256 << 20

// compressedPrefix is how the base64 text of a gzip stream starts (the
// magic bytes 1f 8b 08), so compressed payloads are self-describing and JSON
// (which starts with '{' or whitespace) is never mistaken for one.
const compressedPrefix = "H4sI"

// Encode returns the ConfigMap payload for the canonical JSON of a sealed
// snapshot (Seal's result): json itself when it is at most
// CompressThreshold bytes, else base64 (standard, padded) of its gzip. It
// compresses fast first and, only when that result is above
// slowCompressAbove, again at the best ratio. The result is deterministic:
// same JSON, same bytes. Decode reads both forms.
func Encode(json []byte) []byte {
	if len(json) <= CompressThreshold {
		return json
	}
	out := compress(json, 2)
	if len(out) > slowCompressAbove {
		out = compress(json, gzip.BestCompression)
	}
	return out
}

// slowCompressAbove is the payload size above which Encode spends the time
// for the best compression ratio (a ConfigMap holds at most 1 MiB).
const slowCompressAbove = 640 << 10

func compress(json []byte, level int) []byte {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, level) // the level is valid
	_, _ = zw.Write(json)                    // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	out := make([]byte, base64.StdEncoding.EncodedLen(zb.Len()))
	base64.StdEncoding.Encode(out, zb.Bytes())
	return out
}

// IsCompressed reports whether payload is in the compressed form.
func IsCompressed(payload []byte) bool {
	return bytes.HasPrefix(payload, []byte(compressedPrefix))
}

func decompress(payload []byte) ([]byte, error) {
	zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.TrimSpace(payload))))
	if err != nil {
		return nil, fmt.Errorf("compressed payload: %w", err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, MaxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("compressed payload: %w", err)
	}
	if len(out) > MaxDecodedBytes {
		return nil, errors.New("compressed payload expands beyond the size limit")
	}
	return out, nil
}
