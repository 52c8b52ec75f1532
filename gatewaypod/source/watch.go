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
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watchBackoff paces a pod's reconnects while the API server is unreachable:
// at most WatchRetryMax (plus jitter) between tries. client-go's default
// (0.8 s doubling to 30 s, jitter 1.0) can leave a pod up to a minute behind
// after a 30 s outage, serving an old snapshot while the operator already
// publishes new ones; a pod watches one object, so trying every few seconds
// costs the API server next to nothing.
var watchBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: WatchRetryMax, Steps: 16}

// WatchRetryMax is the longest pause (before jitter) between a pod's tries
// to reach the API server again.
const WatchRetryMax = 4 * time.Second

// namedObject is what watchNamed lists and watches: one object by name.
type namedObject struct {
	namespace, name string
	example         runtime.Object // e.g. &corev1.ConfigMap{}
	list            func(ctx context.Context, ns string, o metav1.ListOptions) (runtime.Object, error)
	watch           func(ctx context.Context, ns string, o metav1.ListOptions) (apiwatch.Interface, error)
}

// watchNamed keeps one object in view until ctx ends: a client-go Reflector
// lists it, watches it, and after a broken watch or an outage tries again
// with watchBackoff. seen gets the object on every add, update and relist
// (callers drop repeats), gone when it is deleted. Both run on the
// reflector's goroutine, one at a time, so they must not block.
func watchNamed(ctx context.Context, obj namedObject, seen func(any), gone func()) {
	selector := fields.OneTermEqualSelector("metadata.name", obj.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return obj.list(ctx, obj.namespace, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (apiwatch.Interface, error) {
			o.FieldSelector = selector
			return obj.watch(ctx, obj.namespace, o)
		},
	}
	backoff := watchBackoff
	r := cache.NewReflectorWithOptions(lw, obj.example, &handlerStore{seen: seen, gone: gone},
		cache.ReflectorOptions{Name: obj.namespace + "/" + obj.name, Backoff: &backoff})
	r.RunWithContext(ctx)
}

// handlerStore is a cache.ReflectorStore that keeps nothing: it turns what
// the reflector stores into calls to seen and gone. The reflector calls it
// from one goroutine.
type handlerStore struct {
	seen    func(any)
	gone    func()
	present bool
}

func (h *handlerStore) Add(obj any) error    { h.present = true; h.seen(obj); return nil }
func (h *handlerStore) Update(obj any) error { h.present = true; h.seen(obj); return nil }
func (h *handlerStore) Resync() error        { return nil }

func (h *handlerStore) Delete(any) error {
	if h.present {
		h.present = false
		h.gone()
	}
	return nil
}

// Replace is a relist: the object if it exists, nothing if it was deleted
// while the watch was down.
func (h *handlerStore) Replace(list []any, _ string) error {
	if len(list) == 0 {
		return h.Delete(nil)
	}
	for _, obj := range list {
		_ = h.Update(obj)
	}
	return nil
}
