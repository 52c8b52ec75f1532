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
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// newPod creates the Pod gw-0, carrying an unrelated annotation, in a fresh
// namespace, and returns that namespace.
func newPod(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	if _, err := kube.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "gw-0",
			Annotations: map[string]string{"keep": "me"},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gw", Image: "gatewaypod"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// patches counts PATCH requests and fails the first failFirst of them
// before they reach the apiserver; wrap installs it in a client's transport.
type patches struct {
	mu        sync.Mutex
	calls     []string // patch bodies
	failFirst int
}

func (p *patches) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) { return p.roundTrip(next, req) })
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (p *patches) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPatch {
		return next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	p.mu.Lock()
	p.calls = append(p.calls, string(body))
	fail := len(p.calls) <= p.failFirst
	p.mu.Unlock()
	if fail {
		return nil, errors.New("apiserver unavailable")
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	return next.RoundTrip(req)
}

func (p *patches) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// start returns a Reporter for a new Pod whose client goes through a
// patches transport, the Pod's namespace, and a func that starts Run.
func start(t *testing.T, failFirst int) (*Reporter, string, *patches, func()) {
	t.Helper()
	ns := newPod(t)
	p := &patches{failFirst: failFirst}
	cfg := rest.CopyConfig(kubeCfg)
	cfg.WrapTransport = p.wrap
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{
		Client: client, Namespace: ns, Name: "gw-0",
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	return r, ns, p, func() {
		go func() { r.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
}

// annotations reads the Pod's annotations from the apiserver.
func annotations(t *testing.T, ns string) map[string]string {
	t.Helper()
	pod, err := kube.CoreV1().Pods(ns).Get(context.Background(), "gw-0", metav1.GetOptions{})
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
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReportPatchesAnnotation(t *testing.T) {
	r, ns, p, run := start(t, 0)
	run()
	r.Report("v1-a")
	waitFor(t, "annotation v1-a", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotVersion] == "v1-a" })
	if got := annotations(t, ns)["keep"]; got != "me" {
		t.Errorf("other annotation = %q, want it kept", got)
	}
	r.Report("v1-b")
	waitFor(t, "annotation v1-b", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotVersion] == "v1-b" })
	r.Report("v1-b") // already written: no patch
	time.Sleep(20 * time.Millisecond)
	if got := p.count(); got != 2 {
		t.Errorf("patches = %d, want 2", got)
	}
}

func TestReportRetries(t *testing.T) {
	r, ns, p, run := start(t, 3)
	run()
	r.Report("v1-a")
	waitFor(t, "annotation after retries", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotVersion] == "v1-a" })
	if got := p.count(); got != 4 {
		t.Errorf("patches = %d, want 3 failures then 1 success", got)
	}
}

func TestReportCoalesces(t *testing.T) {
	r, ns, p, run := start(t, 0)
	for _, v := range []string{"v1-a", "v1-b", "v1-c"} {
		r.Report(v) // never blocks, even before Run
	}
	run()
	waitFor(t, "annotation v1-c", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotVersion] == "v1-c" })
	if got := p.count(); got != 1 {
		t.Errorf("patches = %d, want only the newest version written once", got)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv(podflags.EnvPodName, "")
	t.Setenv(podflags.EnvPodNamespace, "ns")
	r := FromEnv(kube, nil)
	if r != nil {
		t.Fatalf("FromEnv without %s = %v, want nil", podflags.EnvPodName, r)
	}
	r.Report("v1-a") // nil receiver: no-op
	r.Run(context.Background())

	t.Setenv(podflags.EnvPodName, "gw-0")
	if FromEnv(nil, nil) != nil {
		t.Error("FromEnv without a client: want nil")
	}
	if FromEnv(kube, nil) == nil {
		t.Error("FromEnv with name, namespace and client: want a Reporter")
	}
}

func TestRefuseShownThenCleared(t *testing.T) {
	r, ns, p, run := start(t, 0)
	run()
	r.Report("v1-a")
	waitFor(t, "annotation v1-a", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotVersion] == "v1-a" })
	if _, ok := annotations(t, ns)[podflags.AnnotationSnapshotRefused]; ok {
		t.Fatalf("refusal annotation present before any refusal")
	}

	r.Refuse(podflags.SnapshotRefusal{Reason: "Invalid", Message: "unexpected end of JSON input"})
	var got podflags.SnapshotRefusal
	waitFor(t, "refusal annotation", func() bool {
		v, ok := annotations(t, ns)[podflags.AnnotationSnapshotRefused]
		if !ok {
			return false
		}
		var err error
		got, err = podflags.ParseSnapshotRefusal(v)
		return err == nil
	})
	if got.Reason != "Invalid" || got.Message != "unexpected end of JSON input" {
		t.Errorf("refusal = %+v", got)
	}
	a := annotations(t, ns)
	if a[podflags.AnnotationSnapshotVersion] != "v1-a" || a["keep"] != "me" {
		t.Errorf("annotations = %v, want the served version and the unrelated one kept", a)
	}

	// The good payload again: the refusal is over.
	r.Report("v1-a")
	waitFor(t, "refusal cleared", func() bool {
		_, ok := annotations(t, ns)[podflags.AnnotationSnapshotRefused]
		return !ok
	})
	if got := annotations(t, ns)[podflags.AnnotationSnapshotVersion]; got != "v1-a" {
		t.Errorf("version = %q after the clear, want v1-a", got)
	}
	if got := p.count(); got != 3 {
		t.Errorf("patches = %d, want 3 (version, refusal, clear)", got)
	}
}

func TestRefuseBeforeAnyVersion(t *testing.T) {
	r, ns, _, run := start(t, 0)
	run()
	r.Refuse(podflags.SnapshotRefusal{Reason: "Invalid", Message: "bad"})
	waitFor(t, "refusal annotation", func() bool { return annotations(t, ns)[podflags.AnnotationSnapshotRefused] != "" })
	if v, ok := annotations(t, ns)[podflags.AnnotationSnapshotVersion]; ok {
		t.Errorf("version annotation = %q, want none: nothing is served yet", v)
	}
}
