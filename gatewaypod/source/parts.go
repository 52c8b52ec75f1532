package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// DefaultPartRetry is the first wait before the parts of a split snapshot
// are fetched again after a refusal; it doubles up to maxPartRetry.
const DefaultPartRetry = 200 * time.Millisecond

const maxPartRetry = 10 * time.Second

// heads holds the latest head ConfigMap seen by the informer. Only the
// latest matters: an older head is never assembled after a newer one.
type heads struct {
	mu     sync.Mutex
	latest *corev1.ConfigMap
	wake   chan struct{} // capacity 1: a pending wake-up
}

func (h *heads) put(cm *corev1.ConfigMap) {
	h.mu.Lock()
	h.latest = cm
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *heads) get() *corev1.ConfigMap {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest
}

// followHeads offers each new head ConfigMap, one at a time. A split head
// whose parts are not all there yet (the writer writes parts first, but a
// part may be pruned or rewritten under a slow reader) is retried with
// exponential backoff until it assembles or a newer head arrives; the
// current snapshot keeps serving meanwhile.
func (s *Source) followHeads(ctx context.Context) {
	var delay time.Duration
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var retry <-chan time.Time
		if delay > 0 {
			timer.Reset(delay)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.heads.wake:
			delay = 0
			timer.Stop()
		case <-retry:
		}
		head := s.heads.get()
		if head == nil {
			continue
		}
		if err := s.offerHead(ctx, head); err != nil {
			delay = min(max(2*delay, s.opts.PartRetry), maxPartRetry)
			s.log.Debug("Snapshot parts not ready, retrying", "version", head.Annotations[podflags.AnnotationSnapshotVersion],
				"retryIn", delay, "err", err)
		} else {
			delay = 0
		}
	}
}

// offerHead offers the snapshot a head ConfigMap stands for. It returns an
// error only when trying again later may succeed.
func (s *Source) offerHead(ctx context.Context, cm *corev1.ConfigMap) error {
	raw, split := cm.Data[snapshot.ManifestKey]
	if !split {
		s.offerUnsplit(cm)
		return nil
	}
	data, ok := payload(cm)
	if !ok {
		s.refuse(OriginConfigMap, ReasonInvalid, "", cm.ResourceVersion, errors.New("split ConfigMap has no key "+snapshot.ConfigMapKey))
		return nil
	}
	m, err := snapshot.ParseManifest([]byte(raw))
	if err != nil {
		s.refuse(OriginConfigMap, ReasonInvalid, "", cm.ResourceVersion, err)
		return nil
	}
	if m.Version == s.Version() {
		s.mu.Lock()
		s.serving()
		s.mu.Unlock()
		return nil
	}
	parts, err := s.fetchParts(ctx, m)
	if err == nil {
		data, err = m.Assemble(data, parts)
	}
	if err != nil {
		// Not served (yet): parts missing, stale or unreadable (an API
		// error, RBAC); reported once per distinct cause, then retried.
		s.refuse(OriginConfigMap, ReasonPartsIncomplete, m.Version, cm.ResourceVersion, err)
		return err
	}
	s.Offer(OriginConfigMap, data)
	return nil
}

// fetchParts GETs part ConfigMaps 1..n-1 by name (the pod's Role allows
// exactly those names). A missing one is reported as Missing, for Assemble.
func (s *Source) fetchParts(ctx context.Context, m *snapshot.Manifest) ([]snapshot.Part, error) {
	parts := make([]snapshot.Part, 0, m.Parts()-1)
	for i := 1; i < m.Parts(); i++ {
		name := snapshot.PartName(s.opts.ConfigMap, i)
		cm, err := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			parts = append(parts, snapshot.Part{Missing: true})
			continue
		case err != nil:
			return nil, fmt.Errorf("failed to get snapshot part ConfigMap %s/%s: %w", s.opts.Namespace, name, err)
		}
		parts = append(parts, snapshot.Part{Version: cm.Data[snapshot.PartVersionKey], Data: []byte(cm.Data[snapshot.PartKey])})
	}
	return parts, nil
}

// assembleFile returns the mounted snapshot: data itself, or, when a
// manifest file sits next to File, data joined with the mounted parts. It
// reports false, after logging and counting once, when they do not assemble.
func (s *Source) assembleFile(data []byte) ([]byte, bool) {
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(s.opts.File), snapshot.ManifestKey))
	if errors.Is(err, fs.ErrNotExist) {
		return data, true
	}
	if err != nil {
		s.refuse(OriginFile, ReasonInvalid, "", "", fmt.Errorf("manifest file unreadable: %w", err))
		return nil, false
	}
	m, err := snapshot.ParseManifest(raw)
	if err != nil {
		s.refuse(OriginFile, ReasonInvalid, "", string(raw), err)
		return nil, false
	}
	if m.Version == s.Version() {
		return nil, false
	}
	parts := make([]snapshot.Part, 0, m.Parts()-1)
	for i := 1; i < m.Parts(); i++ {
		parts = append(parts, s.readPartFile(i))
	}
	out, err := m.Assemble(data, parts)
	if err != nil {
		s.refuse(OriginFile, ReasonPartsIncomplete, m.Version, string(raw), err)
		return nil, false
	}
	return out, true
}

// readPartFile reads part i from PartsDir; without PartsDir every part is missing.
func (s *Source) readPartFile(i int) snapshot.Part {
	if s.opts.PartsDir == "" {
		return snapshot.Part{Missing: true}
	}
	data, err := os.ReadFile(filepath.Join(s.opts.PartsDir, podflags.SnapshotPartFile(i, snapshot.PartKey)))
	if err != nil {
		return snapshot.Part{Missing: true}
	}
	version, err := os.ReadFile(filepath.Join(s.opts.PartsDir, podflags.SnapshotPartFile(i, snapshot.PartVersionKey)))
	if err != nil {
		return snapshot.Part{Missing: true}
	}
	return snapshot.Part{Version: string(bytes.TrimSpace(version)), Data: data}
}

// refuse reports a head or file that will not be served, once per distinct
// (origin, input, error): retries and polls of the same input stay quiet.
func (s *Source) refuse(origin Origin, reason, version, input string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(origin) + "\x00" + input + "\x00" + err.Error()
	if key == s.lastRefusal {
		return
	}
	s.lastRefusal = key
	s.reject(origin, reason, version, err)
}
