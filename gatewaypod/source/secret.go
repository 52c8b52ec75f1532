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
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// SecretOptions configures WatchSecret.
type SecretOptions struct {
	// Dir is the mounted Secret, read at start (the boot fallback) and, when
	// Name is empty, polled every PollInterval. "" skips it.
	Dir string
	// Namespace and Name name the Secret watched through the API; Name ""
	// means directory-only.
	Namespace string
	Name      string
	// Client reads the Secret; required with Name. RBAC: get/list/watch on
	// that one resourceName (the list is restricted by field selector).
	Client kubernetes.Interface
	// OnData receives the Secret's data each time it changes; the map is
	// the callee's. Calls never overlap.
	OnData func(data map[string][]byte)
	// PollInterval overrides DefaultPollInterval in directory-only mode.
	PollInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// WatchSecret feeds OnData from the mounted directory, then from the API
// (or by polling the directory), until ctx is done.
func WatchSecret(ctx context.Context, opts SecretOptions) error {
	if opts.OnData == nil {
		return errors.New("source: OnData is required")
	}
	if opts.Name != "" && (opts.Client == nil || opts.Namespace == "") {
		return errors.New("source: Client and Namespace are required to watch a Secret")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	var last map[string][]byte
	offer := func(data map[string][]byte) {
		if last != nil && maps.EqualFunc(last, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return
		}
		last = data
		opts.OnData(maps.Clone(data))
	}
	if opts.Dir != "" {
		if data, err := ReadSecretDir(opts.Dir); err != nil {
			log.Info("TLS directory not readable, waiting for another source", "path", opts.Dir, "err", err)
		} else {
			offer(data)
		}
	}
	if opts.Name == "" {
		if opts.Dir == "" {
			<-ctx.Done()
			return nil
		}
		t := time.NewTicker(opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if data, err := ReadSecretDir(opts.Dir); err == nil {
					offer(data)
				}
			}
		}
	}
	// watchNamed calls its handlers from one goroutine, so offer (and
	// OnData) never run concurrently.
	log.Info("Watching TLS Secret", "secret", opts.Namespace+"/"+opts.Name)
	secrets := opts.Client.CoreV1()
	watchNamed(ctx, namedObject{
		namespace: opts.Namespace, name: opts.Name, example: &corev1.Secret{},
		list: func(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error) {
			return secrets.Secrets(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
			return secrets.Secrets(ns).Watch(ctx, o)
		},
	}, func(obj any) {
		if sec, ok := obj.(*corev1.Secret); ok && sec.Name == opts.Name {
			offer(sec.Data)
		}
	}, func() {
		log.Warn("TLS Secret deleted, keeping the current certificates", "secret", opts.Namespace+"/"+opts.Name)
	})
	return nil
}

// ReadSecretDir reads a mounted Secret: one file per key, skipping the
// kubelet's "..data" and timestamped directories.
func ReadSecretDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p) // follows the key's symlink
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}
