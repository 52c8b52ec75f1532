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

package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// adminHandler serves /debug/snapshot (the snapshot being served, with
// secret-looking fields redacted) and, when enabled, pprof. It is meant for
// a loopback or otherwise private --admin-address.
func adminHandler(served *atomic.Pointer[snapshot.Snapshot], enablePprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/snapshot", func(w http.ResponseWriter, _ *http.Request) {
		s := served.Load()
		if s == nil {
			http.Error(w, "no snapshot loaded yet", http.StatusServiceUnavailable)
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(redact(v))
	})
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// secretWords mark JSON fields whose values are never shown: the snapshot
// will carry TLS keys, JWT material and basic-auth data as it grows.
var secretWords = []string{"key", "secret", "password", "token", "credential", "private"}

// redact replaces the values of secret-looking fields (at any depth) with
// "[redacted]". Field names, not values, decide, so nothing is guessed from
// content; public keys are redacted too, which is harmless.
func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			lk := strings.ToLower(k)
			secret := false
			for _, w := range secretWords {
				if strings.Contains(lk, w) {
					secret = true
					break
				}
			}
			if secret && x != nil {
				t[k] = "[redacted]"
			} else {
				t[k] = redact(x)
			}
		}
	case []any:
		for i := range t {
			t[i] = redact(t[i])
		}
	}
	return v
}
