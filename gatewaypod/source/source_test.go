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

package source

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// sealed returns a valid encoded snapshot routing "/" to backend name.
func sealed(name string) (version string, data []byte) {
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: name, Endpoints: []string{"127.0.0.1:1"}},
	}}}}}
	data = snapshot.Seal(s)
	return s.Version, data
}

// recorder is an ApplyFunc that remembers the versions it applied and fails
// for versions listed in failFor.
type recorder struct {
	mu      sync.Mutex
	applied []string
	failFor map[string]bool
}

func (r *recorder) apply(s *snapshot.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failFor[s.Version] {
		return errors.New("router compile failed")
	}
	r.applied = append(r.applied, s.Version)
	return nil
}

func (r *recorder) versions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.applied)
}

func newSource(t *testing.T, opts Options) (*Source, *recorder, *prometheus.Registry) {
	t.Helper()
	rec := &recorder{failFor: map[string]bool{}}
	reg := prometheus.NewPedanticRegistry()
	opts.Apply = rec.apply
	opts.Registerer = reg
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, rec, reg
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOffer(t *testing.T) {
	vA, a := sealed("a")
	vB, b := sealed("b")
	vC, c := sealed("c")
	// Same content, other bytes: indented JSON has the same Version.
	var tmp any
	_ = json.Unmarshal(a, &tmp)
	aIndented, _ := json.MarshalIndent(tmp, "", "  ")
	// A Version that does not match the content.
	tampered := strings.Replace(string(c), vC, "v1-0000000000000000", 1)

	type step struct {
		data        []byte
		failApply   bool
		want        Outcome
		wantVersion string
	}
	tests := map[string]struct {
		steps        []step
		wantApplied  []string
		wantRejected map[string]float64
	}{
		"first valid snapshot is applied": {
			steps:       []step{{data: a, want: Applied, wantVersion: vA}},
			wantApplied: []string{vA},
		},
		"same bytes and same version are skipped": {
			steps: []step{
				{data: a, want: Applied, wantVersion: vA},
				{data: a, want: Unchanged, wantVersion: vA},
				{data: aIndented, want: Unchanged, wantVersion: vA},
			},
			wantApplied: []string{vA},
		},
		"invalid payloads keep the current snapshot": {
			steps: []step{
				{data: a, want: Applied, wantVersion: vA},
				{data: []byte("{not json"), want: Rejected, wantVersion: vA},
				{data: []byte("{not json"), want: Unchanged, wantVersion: vA}, // reported once
				{data: []byte(tampered), want: Rejected, wantVersion: vA},
				{data: []byte(`{"schemaVersion":1,"version":"x","extra":1}`), want: Rejected, wantVersion: vA},
				{data: nil, want: Rejected, wantVersion: vA},
				{data: b, want: Applied, wantVersion: vB},
			},
			wantApplied:  []string{vA, vB},
			wantRejected: map[string]float64{ReasonInvalid: 4},
		},
		"apply failure keeps the current snapshot": {
			steps: []step{
				{data: a, want: Applied, wantVersion: vA},
				{data: b, failApply: true, want: Rejected, wantVersion: vA},
				{data: c, want: Applied, wantVersion: vC},
				{data: a, want: Applied, wantVersion: vA}, // going back is a change too
			},
			wantApplied:  []string{vA, vC, vA},
			wantRejected: map[string]float64{ReasonApplyFailed: 1},
		},
		"invalid before any valid": {
			steps:        []step{{data: []byte("null"), want: Rejected, wantVersion: ""}},
			wantRejected: map[string]float64{ReasonInvalid: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, rec, _ := newSource(t, Options{File: "unused"})
			for i, st := range tc.steps {
				if st.failApply {
					v, _ := snapshot.Decode(st.data)
					rec.failFor[v.Version] = true
				}
				if got := s.Offer(OriginConfigMap, st.data); got != st.want {
					t.Errorf("step %d: Offer = %v, want %v", i, got, st.want)
				}
				if got := s.Version(); got != st.wantVersion {
					t.Errorf("step %d: Version = %q, want %q", i, got, st.wantVersion)
				}
			}
			if diff := cmp.Diff(tc.wantApplied, rec.versions()); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
			for _, reason := range []string{ReasonInvalid, ReasonApplyFailed} {
				if got := testutil.ToFloat64(s.rejected.WithLabelValues(reason)); got != tc.wantRejected[reason] {
					t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, tc.wantRejected[reason])
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	apply := func(*snapshot.Snapshot) error { return nil }
	for name, opts := range map[string]Options{
		"no apply":             {File: "x"},
		"no source":            {Apply: apply},
		"configmap, no client": {Apply: apply, Namespace: "ns", ConfigMap: "cm"},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: New succeeded, want error", name)
		}
	}
}

// writeAtomic replaces path the way the kubelet updates a ConfigMap volume:
// write aside, then rename over.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestRunFileOnly(t *testing.T) {
	vA, a := sealed("a")
	vB, b := sealed("b")
	path := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	s, rec, _ := newSource(t, Options{File: path, PollInterval: 10 * time.Millisecond})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// A missing file at boot is not fatal; the file shows up later.
	time.Sleep(30 * time.Millisecond)
	if got := rec.versions(); len(got) != 0 {
		t.Fatalf("applied %v from a missing file", got)
	}
	writeAtomic(t, path, a)
	eventually(t, "file snapshot A", func() bool { return s.Version() == vA })
	writeAtomic(t, path, []byte("garbage"))
	writeAtomic(t, path, b)
	eventually(t, "file snapshot B", func() bool { return s.Version() == vB })

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := rec.versions(); !slices.Equal(got, []string{vA, vB}) {
		t.Errorf("applied %v, want [%s %s]", got, vA, vB)
	}
}

func TestRunConfigMap(t *testing.T) {
	vBoot, boot := sealed("boot")
	vA, a := sealed("a")
	vB, b := sealed("b")
	path := filepath.Join(t.TempDir(), snapshot.ConfigMapKey)
	if err := os.WriteFile(path, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	cm, err := kube.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-snapshot"},
		Data:       map[string]string{snapshot.ConfigMapKey: string(a)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Another ConfigMap in the namespace must not be taken for the snapshot.
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated"},
		Data:       map[string]string{snapshot.ConfigMapKey: string(b)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s, rec, _ := newSource(t, Options{File: path, Namespace: ns, ConfigMap: "gw-snapshot", Client: kube})
	runSource(t, s)
	ctx := context.Background()

	// The file is served first, then the API's copy replaces it.
	eventually(t, "ConfigMap snapshot A", func() bool { return s.Version() == vA })
	if got := rec.versions(); !slices.Equal(got, []string{vBoot, vA}) {
		t.Errorf("applied %v, want [%s %s]", got, vBoot, vA)
	}

	update := func(data map[string]string) {
		t.Helper()
		c := cm.DeepCopy()
		c.Data = data
		updated, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, c, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm = updated
	}
	// Invalid content and a missing key are rejected; B then goes live.
	update(map[string]string{snapshot.ConfigMapKey: "{"})
	eventually(t, "invalid payload rejected", func() bool {
		return testutil.ToFloat64(s.rejected.WithLabelValues(ReasonInvalid)) == 1
	})
	update(map[string]string{"other": "x"})
	eventually(t, "missing key rejected", func() bool {
		return testutil.ToFloat64(s.rejected.WithLabelValues(ReasonInvalid)) == 2
	})
	if got := s.Version(); got != vA {
		t.Errorf("after invalid payloads Version = %q, want %q", got, vA)
	}
	update(map[string]string{snapshot.ConfigMapKey: string(b)})
	eventually(t, "ConfigMap snapshot B", func() bool { return s.Version() == vB })
}
