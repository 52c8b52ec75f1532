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

// Package podstatus tells the controller which snapshot this pod serves, by
// setting podflags.AnnotationSnapshotVersion on the pod's own Pod object, and
// which payload it refused, with podflags.AnnotationSnapshotRefused. The
// controller counts ready pods carrying the current version to decide that
// the instance is Programmed, and pods carrying a refusal to report it.
//
// Report and Refuse never block: they record the latest state and wake a
// background loop (Run) that patches, retrying with exponential backoff.
// States that arrive while a patch is pending coalesce: only the newest is
// written.
package podstatus

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// Default backoff between failed patches.
const (
	DefaultInitialBackoff = 200 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
)

// FieldManager names gatewaypod as the writer of the annotation.
const FieldManager = "portico-gatewaypod"

// Options configures a Reporter.
type Options struct {
	// Client patches the Pod. RBAC needs get and patch on pods in Namespace.
	Client kubernetes.Interface
	// Namespace and Name identify this process's Pod.
	Namespace string
	Name      string
	// Logger receives patch failures. Nil discards.
	Logger *slog.Logger
	// InitialBackoff and MaxBackoff bound the retry delay; zero means the defaults.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Reporter writes the served snapshot version onto the Pod. A nil *Reporter
// is valid and does nothing, for processes that do not run in a Pod.
type Reporter struct {
	opts Options
	log  *slog.Logger

	wake chan struct{} // buffered 1: "latest changed"

	mu     sync.Mutex
	latest state // what to report
}

// state is what the Pod's annotations should say.
type state struct {
	version string // the served snapshot version
	refused string // an encoded podflags.SnapshotRefusal, "" for none
}

// New returns a Reporter for the Pod named in opts, or nil (reporting
// disabled) when Client, Namespace or Name is missing.
func New(opts Options) *Reporter {
	if opts.Client == nil || opts.Namespace == "" || opts.Name == "" {
		return nil
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{opts: opts, log: log, wake: make(chan struct{}, 1)}
}

// FromEnv is New with Namespace and Name read from the downward-API
// variables podflags.EnvPodNamespace and podflags.EnvPodName.
func FromEnv(client kubernetes.Interface, logger *slog.Logger) *Reporter {
	return New(Options{
		Client:    client,
		Namespace: os.Getenv(podflags.EnvPodNamespace),
		Name:      os.Getenv(podflags.EnvPodName),
		Logger:    logger,
	})
}

// Report asks for version to be written to the Pod, and a refusal reported
// before to be removed: the pod serves version, which is what it was given.
// It returns at once.
func (r *Reporter) Report(version string) {
	r.set(func(st *state) { *st = state{version: version} })
}

// Refuse asks for a refused payload to be shown on the Pod, next to the
// version still served. It returns at once.
func (r *Reporter) Refuse(refusal podflags.SnapshotRefusal) {
	r.set(func(st *state) { st.refused = refusal.Encode() })
}

// set changes the latest state and wakes Run.
func (r *Reporter) set(change func(*state)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	change(&r.latest)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending; it will read the latest
	}
}

// Run patches the Pod whenever Report or Refuse change its state, until ctx
// is done.
func (r *Reporter) Run(ctx context.Context) {
	if r == nil {
		return
	}
	var (
		written state // what the Pod is known to carry
		backoff time.Duration
		retry   <-chan time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			if retry != nil {
				continue // a retry is scheduled and will send the latest
			}
		case <-retry:
			retry = nil
		}
		r.mu.Lock()
		want := r.latest
		r.mu.Unlock()
		if want == written {
			continue
		}
		if err := r.patch(ctx, want); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, r.opts.InitialBackoff), r.opts.MaxBackoff)
			delay := backoff/2 + rand.N(backoff/2+1) // jitter: [backoff/2, backoff]
			r.log.Error("Pod annotation patch failed, retrying", "pod", r.opts.Namespace+"/"+r.opts.Name,
				"version", want.version, "refused", want.refused, "retryIn", delay.String(), "err", err)
			retry = time.After(delay)
			continue
		}
		written, backoff = want, 0
		r.log.Debug("Pod annotation patched", "pod", r.opts.Namespace+"/"+r.opts.Name, "version", want.version, "refused", want.refused)
	}
}

// patch sets the annotations with a JSON merge patch, which touches no other
// field and needs no prior read of the Pod; a null value removes the refusal.
func (r *Reporter) patch(ctx context.Context, st state) error {
	var refused *string // nil: JSON null, delete
	if st.refused != "" {
		refused = &st.refused
	}
	annotations := map[string]any{podflags.AnnotationSnapshotRefused: refused}
	if st.version != "" { // nothing served yet (the first payload was refused)
		annotations[podflags.AnnotationSnapshotVersion] = st.version
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = r.opts.Client.CoreV1().Pods(r.opts.Namespace).Patch(ctx, r.opts.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
	return err
}
