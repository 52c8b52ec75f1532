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

package podstatus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

func newPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "gw-0",
		Annotations: map[string]string{"keep": "me"},
	}}
}

// patches counts patch calls and fails the first failFirst of them.
type patches struct {
	mu        sync.Mutex
	calls     []string // patch bodies
	failFirst int
}

func (p *patches) react(action k8stesting.Action) (bool, runtime.Object, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, string(action.(k8stesting.PatchAction).GetPatch()))
	if len(p.calls) <= p.failFirst {
		return true, nil, errors.New("apiserver unavailable")
	}
	return false, nil, nil // fall through to the object tracker
}

func (p *patches) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func start(t *testing.T, failFirst int) (*Reporter, *fake.Clientset, *patches, func()) {
	t.Helper()
	client := fake.NewClientset(newPod())
	p := &patches{failFirst: failFirst}
	client.PrependReactor("patch", "pods", p.react)
	r := New(Options{
		Client: client, Namespace: "ns", Name: "gw-0",
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	return r, client, p, func() {
		go func() { r.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
}

func annotations(t *testing.T, client *fake.Clientset) map[string]string {
	t.Helper()
	pod, err := client.CoreV1().Pods("ns").Get(context.Background(), "gw-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod.Annotations
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestReportPatchesAnnotation(t *testing.T) {
	r, client, p, run := start(t, 0)
	run()
	r.Report("v1-a")
	waitFor(t, "annotation v1-a", func() bool { return annotations(t, client)[podflags.AnnotationSnapshotVersion] == "v1-a" })
	if got := annotations(t, client)["keep"]; got != "me" {
		t.Errorf("other annotation = %q, want it kept", got)
	}
	r.Report("v1-b")
	waitFor(t, "annotation v1-b", func() bool { return annotations(t, client)[podflags.AnnotationSnapshotVersion] == "v1-b" })
	r.Report("v1-b") // already written: no patch
	time.Sleep(20 * time.Millisecond)
	if got := p.count(); got != 2 {
		t.Errorf("patches = %d, want 2", got)
	}
}

func TestReportRetries(t *testing.T) {
	r, client, p, run := start(t, 3)
	run()
	r.Report("v1-a")
	waitFor(t, "annotation after retries", func() bool { return annotations(t, client)[podflags.AnnotationSnapshotVersion] == "v1-a" })
	if got := p.count(); got != 4 {
		t.Errorf("patches = %d, want 3 failures then 1 success", got)
	}
}

func TestReportCoalesces(t *testing.T) {
	r, client, p, run := start(t, 0)
	for _, v := range []string{"v1-a", "v1-b", "v1-c"} {
		r.Report(v) // never blocks, even before Run
	}
	run()
	waitFor(t, "annotation v1-c", func() bool { return annotations(t, client)[podflags.AnnotationSnapshotVersion] == "v1-c" })
	if got := p.count(); got != 1 {
		t.Errorf("patches = %d, want only the newest version written once", got)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	t.Setenv(podflags.EnvPodNamespace, "ns")
	r := FromEnv(fake.NewClientset(), nil)
	if r != nil {
		t.Fatalf("FromEnv without %s = %v, want nil", podflags.EnvPodName, r)
	}
	r.Report("v1-a") // nil receiver: no-op
	r.Run(context.Background())

	t.Setenv(podflags.EnvPodName, "gw-0")
	if FromEnv(nil, nil) != nil {
		t.Error("FromEnv without a client: want nil")
	}
	if FromEnv(fake.NewClientset(), nil) == nil {
		t.Error("FromEnv with name, namespace and client: want a Reporter")
	}
}
