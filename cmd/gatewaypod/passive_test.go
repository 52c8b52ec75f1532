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
	"testing"
	"time"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

func TestPassiveHealthFlags(t *testing.T) {
	tests := map[string]struct {
		f    podflags.Flags
		want balancer.PassiveHealth
	}{
		"defaults": {want: balancer.DefaultPassiveHealth},
		"off":      {f: podflags.Flags{PassiveMaxFailures: -1, PassiveEjection: time.Second}, want: balancer.PassiveHealth{}},
		"tuned": {f: podflags.Flags{PassiveMaxFailures: 2, PassiveEjection: time.Second, PassiveMaxEjection: time.Minute},
			want: balancer.PassiveHealth{MaxFailures: 2, BaseEjection: time.Second, MaxEjection: time.Minute}},
		"only failures": {f: podflags.Flags{PassiveMaxFailures: 9},
			want: balancer.PassiveHealth{MaxFailures: 9, BaseEjection: balancer.DefaultPassiveHealth.BaseEjection}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := *passiveHealth(tc.f); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
