// Package snapshot is the wire format shared by the controller (which writes it
// into the instance's ConfigMap) and gatewaypod (which reads, validates and
// serves it). It imports nothing from Kubernetes so the data plane stays small
// and the format can be tested without I/O.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SchemaVersion is bumped whenever the meaning of a field changes, so an old
// gatewaypod refuses a snapshot it would misread instead of guessing.
const SchemaVersion = 1

// ConfigMapKey is the key that holds the encoded snapshot in the ConfigMap.
const ConfigMapKey = "snapshot.json"

// PathType mirrors networking.k8s.io/v1 PathType without importing it.
type PathType string

const (
	// PathExact matches the URL path exactly, case-sensitively.
	PathExact PathType = "Exact"
	// PathPrefix matches element by element on '/'-separated path segments.
	PathPrefix PathType = "Prefix"
)

// Snapshot is one immutable, versioned routing configuration for one gateway
// instance. Lists are sorted by the compiler so equal inputs give equal bytes.
type Snapshot struct {
	// SchemaVersion is the format version, see SchemaVersion.
	SchemaVersion int `json:"schemaVersion"`
	// Version is a content hash of the snapshot with Version left empty
	// (see Hash); gatewaypod reports it so the controller can tell when ready
	// pods serve the current configuration.
	Version string `json:"version"`
	// Hosts are the virtual hosts, sorted by Host. Host "" matches any host.
	Hosts []VirtualHost `json:"hosts,omitempty"`
	// DefaultBackend serves requests that match no route; nil means 404.
	DefaultBackend *Backend `json:"defaultBackend,omitempty"`
}

// VirtualHost groups the routes of one host name.
type VirtualHost struct {
	// Host is a lower-case DNS name, "*.example.com" for a one-label wildcard,
	// or "" for rules without a host.
	Host string `json:"host"`
	// Routes are ordered by the compiler: longer paths first, Exact before
	// Prefix on equal length, so the first match wins.
	Routes []Route `json:"routes"`
}

// Route sends requests whose path matches to one backend.
type Route struct {
	// Path is the Ingress path; it always starts with '/'.
	Path string `json:"path"`
	// PathType is Exact or Prefix.
	PathType PathType `json:"pathType"`
	// Backend is where matching requests go.
	Backend Backend `json:"backend"`
	// Source names the Ingress the route came from, "namespace/name", for logs.
	Source string `json:"source,omitempty"`
}

// Backend is a resolved Service port.
type Backend struct {
	// Name identifies the backend, "namespace/service:port", for logs and metrics.
	Name string `json:"name"`
	// Endpoints are the ready "host:port" addresses, sorted and de-duplicated.
	// Empty means the route exists but has nowhere to go: gatewaypod answers 503.
	Endpoints []string `json:"endpoints,omitempty"`
}

// Hash returns the content version of s: "v<schema>-" plus the first 16 hex
// digits of the SHA-256 of its canonical JSON with Version cleared.
func Hash(s *Snapshot) string {
	c := *s
	c.Version = ""
	b, err := json.Marshal(&c)
	if err != nil {
		// Marshal of this plain struct cannot fail; a panic here is a programmer error.
		panic(fmt.Sprintf("snapshot: marshal: %v", err))
	}
	sum := sha256.Sum256(b)
	return "v" + strconv.Itoa(c.SchemaVersion) + "-" + hex.EncodeToString(sum[:8])
}

// Seal sets SchemaVersion and Version and returns the encoded bytes.
func Seal(s *Snapshot) []byte {
	s.SchemaVersion = SchemaVersion
	s.Version = Hash(s)
	b, _ := json.Marshal(s)
	return b
}

// Decode parses and validates an encoded snapshot. Unknown fields are refused
// so a snapshot from a newer controller is not silently half-applied.
func Decode(b []byte) (*Snapshot, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks everything gatewaypod relies on, and returns all problems
// joined, so a corrupt snapshot is refused whole before any of it is used.
func (s *Snapshot) Validate() error {
	var errs []error
	if s.SchemaVersion != SchemaVersion {
		errs = append(errs, fmt.Errorf("schemaVersion %d is not supported (want %d)", s.SchemaVersion, SchemaVersion))
	}
	if want := Hash(s); s.Version != want {
		errs = append(errs, fmt.Errorf("version %q does not match content hash %q", s.Version, want))
	}
	seen := map[string]bool{}
	for i, vh := range s.Hosts {
		if seen[vh.Host] {
			errs = append(errs, fmt.Errorf("hosts[%d]: duplicate host %q", i, vh.Host))
		}
		seen[vh.Host] = true
		if vh.Host != strings.ToLower(vh.Host) {
			errs = append(errs, fmt.Errorf("hosts[%d]: host %q is not lower-case", i, vh.Host))
		}
		if strings.Contains(strings.TrimPrefix(vh.Host, "*."), "*") {
			errs = append(errs, fmt.Errorf("hosts[%d]: host %q: only a leading '*.' wildcard is allowed", i, vh.Host))
		}
		for j, r := range vh.Routes {
			where := fmt.Sprintf("hosts[%d].routes[%d]", i, j)
			if !strings.HasPrefix(r.Path, "/") {
				errs = append(errs, fmt.Errorf("%s: path %q must start with '/'", where, r.Path))
			}
			if r.PathType != PathExact && r.PathType != PathPrefix {
				errs = append(errs, fmt.Errorf("%s: unknown pathType %q", where, r.PathType))
			}
			errs = append(errs, validateBackend(where+".backend", &r.Backend)...)
		}
	}
	if s.DefaultBackend != nil {
		errs = append(errs, validateBackend("defaultBackend", s.DefaultBackend)...)
	}
	return errors.Join(errs...)
}

func validateBackend(where string, b *Backend) []error {
	var errs []error
	if b.Name == "" {
		errs = append(errs, fmt.Errorf("%s: name is empty", where))
	}
	for k, ep := range b.Endpoints {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: %q is not host:port", where, k, ep))
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: port %q out of range", where, k, port))
		}
	}
	return errs
}
