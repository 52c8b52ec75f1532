/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package source feeds gatewaypod with snapshots. It reads the mounted file
// once at boot, so the pod can serve before the API answers, and then
// watches the instance's ConfigMap through the API, so a change is live in
// about a second instead of after the kubelet's volume sync. Without a
// ConfigMap it polls the file instead.
//
// Every payload goes through Offer: identical bytes or an unchanged Version
// are skipped, an invalid one is logged with its reason and counted while the
// current snapshot keeps serving, and a valid new one is handed to the
// ApplyFunc, which builds the router and swaps it in.
//
// A snapshot too large for one ConfigMap is split (see snapshot.Split): the
// watched head ConfigMap holds a manifest, and the parts are fetched by name
// (or read from the mounted parts directory at boot) and assembled all or
// nothing. A head whose parts are missing, stale or unreadable is refused
// (ReasonPartsIncomplete, once per cause) and retried with backoff until it
// assembles or a newer head replaces it.
package source

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Origin says where a payload came from, for logs.
type Origin string

const (
	// OriginFile is the mounted snapshot file.
	OriginFile Origin = "file"
	// OriginConfigMap is the ConfigMap watched through the API.
	OriginConfigMap Origin = "configMap"
)

// Outcome is what Offer did with a payload.
type Outcome int

const (
	// Unchanged: the payload or its Version equals what is being served.
	Unchanged Outcome = iota
	// Applied: the snapshot was valid and ApplyFunc accepted it.
	Applied
	// Rejected: the payload was invalid or ApplyFunc failed; the previous
	// snapshot keeps serving.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Unchanged:
		return "Unchanged"
	case Applied:
		return "Applied"
	case Rejected:
		return "Rejected"
	}
	return "Outcome(?)"
}

// Reasons, the values of the "reason" label of MetricSnapshotRejected.
const (
	// ReasonInvalid: the payload is missing, does not decode or fails validation.
	ReasonInvalid = "Invalid"
	// ReasonApplyFailed: ApplyFunc refused a valid snapshot.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonPartsIncomplete: a split snapshot's parts are missing, from
	// another version or altered; the source retries with backoff.
	ReasonPartsIncomplete = "PartsIncomplete"
)

// MetricSnapshotRejected counts payloads that were not served.
const MetricSnapshotRejected = "portico_gatewaypod_snapshot_rejected_total"

// DefaultPollInterval is how often the file is re-read in file-only mode.
const DefaultPollInterval = 2 * time.Second

// ApplyFunc starts serving s. It is called with one snapshot at a time, never
// concurrently. An error keeps the previous snapshot in service.
type ApplyFunc func(s *snapshot.Snapshot) error

// Options configures a Source.
type Options struct {
	// File is the mounted snapshot, read at boot; "" skips it. When a
	// snapshot.ManifestKey file sits next to it, the snapshot is split and
	// its parts are read from PartsDir.
	File string
	// PartsDir is the mounted part ConfigMaps (podflags.SnapshotPartFile
	// layout); "" means a split snapshot is assembled through the API only.
	PartsDir string
	// Namespace and ConfigMap name the ConfigMap to watch; ConfigMap ""
	// means file-only mode, where File is polled every PollInterval.
	Namespace string
	ConfigMap string
	// Client reads the ConfigMap; required when ConfigMap is set. RBAC needs
	// only get/list/watch on that one resourceName (the list and watch are
	// restricted with the field selector metadata.name=<ConfigMap>), and get
	// on the part ConfigMaps snapshot.PartName(ConfigMap, 1..MaxParts-1).
	Client kubernetes.Interface
	// Apply receives each new valid snapshot. Required.
	Apply ApplyFunc
	// PollInterval overrides DefaultPollInterval in file-only mode.
	PollInterval time.Duration
	// PartRetry is the first wait before fetching the parts of a split
	// snapshot again (doubling up to maxPartRetry); 0 means DefaultPartRetry.
	PartRetry time.Duration
	// Logger receives one line per applied or rejected snapshot. Nil discards.
	Logger *slog.Logger
	// Registerer receives MetricSnapshotRejected. Nil registers nothing.
	Registerer prometheus.Registerer
	// Refused, when set, receives each payload refusal as it is reported
	// (once per distinct payload), except ReasonPartsIncomplete, which is
	// retried. It is called with Offer's lock held and must not block.
	Refused func(Refusal)
	// Serving, when set, receives the served version each time a valid
	// payload for it arrives: applied now, or equal to the one served. A
	// refusal reported before is over. Same calling rules as Refused.
	Serving func(version string)
}

// Source decides which payloads become the served snapshot.
type Source struct {
	opts     Options
	log      *slog.Logger
	rejected *prometheus.CounterVec

	mu       sync.Mutex // serializes Offer: compare, apply, record
	lastData []byte     // the last payload offered, valid or not
	version  string     // the Version being served, "" before the first
	// lastRefusal identifies the last refusal reported by refuse, so a
	// head retried or re-read is reported once, not on every attempt.
	lastRefusal string

	heads heads // the latest head ConfigMap, for followHeads
}

// New checks opts and registers the source's metric.
func New(opts Options) (*Source, error) {
	if opts.Apply == nil {
		return nil, errors.New("source: Apply is required")
	}
	if opts.ConfigMap != "" && (opts.Client == nil || opts.Namespace == "") {
		return nil, errors.New("source: Client and Namespace are required to watch a ConfigMap")
	}
	if opts.ConfigMap == "" && opts.File == "" {
		return nil, errors.New("source: one of File or ConfigMap is required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		opts: opts,
		log:  log,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSnapshotRejected,
			Help: "Snapshot payloads that were not served, by reason; the previous snapshot kept serving.",
		}, []string{"reason"}),
	}
	s.rejected.WithLabelValues(ReasonInvalid)
	s.rejected.WithLabelValues(ReasonApplyFailed)
	s.rejected.WithLabelValues(ReasonPartsIncomplete)
	if s.opts.PartRetry <= 0 {
		s.opts.PartRetry = DefaultPartRetry
	}
	s.heads.wake = make(chan struct{}, 1)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.rejected); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Version returns the version being served, "" before the first snapshot.
func (s *Source) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Offer decodes data and, if it is a valid new snapshot, applies it. It is
// safe for concurrent use; callers are serialized.
func (s *Source) Offer(origin Origin, data []byte) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastData != nil && bytes.Equal(data, s.lastData) {
		// Informer relists and file polls repeat themselves; an invalid
		// payload was already reported the first time.
		return Unchanged
	}
	s.lastData = bytes.Clone(data)
	snap, err := snapshot.Decode(data)
	if err != nil {
		s.reject(origin, ReasonInvalid, "", err)
		return Rejected
	}
	if snap.Version == s.version {
		s.serving()
		return Unchanged
	}
	if err := s.opts.Apply(snap); err != nil {
		s.reject(origin, ReasonApplyFailed, snap.Version, err)
		return Rejected
	}
	s.log.Info("Snapshot applied", "origin", origin, "version", snap.Version, "previousVersion", s.version, "hosts", len(snap.Hosts))
	s.version = snap.Version
	s.serving()
	return Applied
}

// reject records a payload that will not be served.
func (s *Source) reject(origin Origin, reason, version string, err error) {
	s.rejected.WithLabelValues(reason).Inc()
	s.log.Error("Snapshot rejected, keeping the current one", "origin", origin, "reason", reason,
		"version", version, "currentVersion", s.version, "err", err)
	if s.opts.Refused != nil && reason != ReasonPartsIncomplete {
		s.opts.Refused(Refusal{Origin: origin, Reason: reason, Version: version, Message: err.Error()})
	}
}

// Run loads the file, then follows the ConfigMap (or polls the file in
// file-only mode) until ctx is done. It returns nil when ctx is done.
func (s *Source) Run(ctx context.Context) error {
	if s.opts.File != "" {
		s.loadFile(true)
	}
	if s.opts.ConfigMap == "" {
		return s.pollFile(ctx)
	}
	return s.watchConfigMap(ctx)
}

// loadFile offers the file's content. A missing file is normal (the volume
// may not be there yet, or this is a test); it is logged when report is set.
func (s *Source) loadFile(report bool) {
	data, err := os.ReadFile(s.opts.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if report {
			s.log.Info("Snapshot file not found, waiting for another source", "path", s.opts.File)
		}
		return
	case err != nil:
		if report {
			s.log.Error("Snapshot file unreadable", "path", s.opts.File, "err", err)
		}
		return
	}
	data, ok := s.assembleFile(data)
	if !ok {
		return
	}
	s.Offer(OriginFile, data)
}

// pollFile re-reads the file. A ConfigMap volume changes by an atomic
// symlink swap, so a read sees either the old or the new content, whole.
func (s *Source) pollFile(ctx context.Context) error {
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.loadFile(false)
		}
	}
}

// watchConfigMap watches the one head ConfigMap (watchNamed: list, watch,
// reconnect after a broken watch or an outage within seconds).
func (s *Source) watchConfigMap(ctx context.Context) error {
	s.log.Info("Watching snapshot ConfigMap", "configMap", s.opts.Namespace+"/"+s.opts.ConfigMap)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.followHeads(ctx)
	}()
	cms := s.opts.Client.CoreV1()
	watchNamed(ctx, namedObject{
		namespace: s.opts.Namespace, name: s.opts.ConfigMap, example: &corev1.ConfigMap{},
		list: func(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
			return cms.ConfigMaps(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
			return cms.ConfigMaps(ns).Watch(ctx, o)
		},
	}, s.onConfigMap, func() {
		s.log.Warn("Snapshot ConfigMap deleted, keeping the current snapshot",
			"configMap", s.opts.Namespace+"/"+s.opts.ConfigMap, "currentVersion", s.Version())
	})
	<-done
	return nil
}

// onConfigMap hands the watched (head) ConfigMap to followHeads, which
// assembles a split snapshot and offers it.
func (s *Source) onConfigMap(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Name != s.opts.ConfigMap {
		return
	}
	s.heads.put(cm)
}

// offerUnsplit offers the snapshot key of a head ConfigMap without a manifest.
func (s *Source) offerUnsplit(cm *corev1.ConfigMap) {
	data, ok := payload(cm)
	if !ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lastData = nil
		s.reject(OriginConfigMap, ReasonInvalid, "", errors.New("ConfigMap has no key "+snapshot.ConfigMapKey))
		return
	}
	s.Offer(OriginConfigMap, data)
}

// payload returns the encoded snapshot held by cm.
func payload(cm *corev1.ConfigMap) ([]byte, bool) {
	if v, ok := cm.Data[snapshot.ConfigMapKey]; ok {
		return []byte(v), true
	}
	if v, ok := cm.BinaryData[snapshot.ConfigMapKey]; ok {
		return v, true
	}
	return nil, false
}
