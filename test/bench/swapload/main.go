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

// Command swapload measures snapshot swaps under load (issue #5): it runs
// backends, a gatewaypod proxy and keep-alive clients on 127.0.0.1, offers
// -swaps snapshots through the pod's source path during -requests
// requests from -workers clients, keeps an upgraded (WebSocket-style)
// connection open across all swaps, prints the figures, and exits 1 unless
// no request failed, no connection was dropped (dials == workers) and the
// upgraded connection still echoes after the last swap. Bounded by
// -requests and -timeout.
//
//	go run ./test/bench/swapload -workers 16 -requests 50000 -swaps 100
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/portico-dev/portico/internal/swapload"
)

func main() {
	var c swapload.Config
	flag.IntVar(&c.Workers, "workers", 16, "keep-alive clients, one connection each")
	flag.IntVar(&c.Requests, "requests", 50000, "requests in total")
	flag.IntVar(&c.Swaps, "swaps", 100, "snapshot swaps spread over the run")
	flag.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "upper bound of the run")
	flag.Parse()
	res, err := swapload.Run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(res)
	if err := res.Err(c); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("PASS: zero failed requests, zero dropped connections, the upgraded connection survived every swap")
}
