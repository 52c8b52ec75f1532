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
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWatchSecret: the mounted directory is offered first (with the
// kubelet's ..data layout), then the API's Secret and its updates.
func TestWatchSecret(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_22")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "a.crt"), []byte("file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_11_22", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/a.crt", filepath.Join(dir, "a.crt")); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	sec, err := kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-tls"}, Data: map[string][]byte{"a.crt": []byte("api")},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Another Secret in the namespace must not be delivered.
	if _, err := kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "other"}, Data: map[string][]byte{"a.crt": []byte("no")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- WatchSecret(ctx, SecretOptions{Dir: dir, Namespace: ns, Name: "gw-tls", Client: kube,
			OnData: func(d map[string][]byte) { got <- string(d["a.crt"]) }})
	}()
	next := func(want string) {
		t.Helper()
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("data %q, want %q", v, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no data, want %q", want)
		}
	}
	next("file")
	next("api")
	sec.Data["a.crt"] = []byte("api2")
	if _, err := kube.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	next("api2")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
