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

package balancer

import (
	"net/http"
	"testing"
)

func TestNginxKey(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "http://app.test/a/b?user=42&x=1", nil)
	r.RemoteAddr = "192.0.2.7:5000"
	r.Header.Set("X-User-Id", "u1")
	r.AddCookie(&http.Cookie{Name: "sid", Value: "s9"})
	tests := []struct {
		spec string
		key  string
		ok   bool
	}{
		{"$request_uri", "/a/b?user=42&x=1", true},
		{"$uri", "/a/b", true},
		{"$host", "app.test", true},
		{"$remote_addr", "192.0.2.7", true},
		{"$http_x_user_id", "u1", true},
		{"$cookie_sid", "s9", true},
		{"$arg_user", "42", true},
		{"$arg_missing", "", false},
		{"$host$uri", "app.test/a/b", true},
		{"k-$arg_user", "k-42", true},
		{"k-$arg_missing", "k-", false},
		{"$unknown", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			key, ok := NginxKey(tc.spec)(r)
			if key != tc.key || ok != tc.ok {
				t.Errorf("NginxKey(%q) = %q, %v; want %q, %v", tc.spec, key, ok, tc.key, tc.ok)
			}
		})
	}
}
