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

package proxy_test

import (
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/swapload"
)

// TestSwapsUnderLoad is issue #5's proof, run with -race by make test: 100
// snapshot swaps through source.Offer (decode, validate, compile, swap)
// during keep-alive load cause zero failed requests and zero dropped
// connections (each worker dials exactly once), and an upgraded connection
// opened before the first swap still echoes after the last. The figures of
// a longer run come from test/bench/swapload.
func TestSwapsUnderLoad(t *testing.T) {
	cfg := swapload.Config{Workers: 8, Requests: 4000, Swaps: 100, Timeout: 60 * time.Second}
	res, err := swapload.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if err := res.Err(cfg); err != nil {
		t.Fatal(err)
	}
	if res.WebSocketEchoes != 2+cfg.Swaps/25 {
		t.Errorf("%d echoes on the upgraded connection, want %d", res.WebSocketEchoes, 2+cfg.Swaps/25)
	}
}
