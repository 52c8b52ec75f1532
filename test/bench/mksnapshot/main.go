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

// Command mksnapshot writes a sealed gatewaypod snapshot that routes every
// host and path ("" host, Prefix "/") to the given endpoints, for benchmarks
// and reload tests. -gen adds a dummy virtual host so each generation has a
// new version (a real swap); -hosts/-paths add extra routes so lookups run
// against a bigger router. The file is written atomically (rename), the way
// a ConfigMap volume changes.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func main() {
	out := flag.String("out", "snapshot.json", "file to write")
	endpoints := flag.String("endpoints", "127.0.0.1:19000", "comma-separated host:port of the backend")
	gen := flag.Int("gen", 0, "generation; a different value gives a different snapshot version")
	hosts := flag.Int("hosts", 0, "extra exact hosts h<i>.bench.test (each with -paths routes)")
	paths := flag.Int("paths", 1, "routes per extra host")
	flag.Parse()

	be := snapshot.Backend{Name: "bench/backend:80", Endpoints: strings.Split(*endpoints, ",")}
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: be,
	}}}}}
	if *gen != 0 {
		s.Hosts = append(s.Hosts, snapshot.VirtualHost{Host: fmt.Sprintf("gen-%d.invalid", *gen),
			Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix, Backend: be}}})
	}
	for i := range *hosts {
		vh := snapshot.VirtualHost{Host: fmt.Sprintf("h%d.bench.test", i)}
		for j := range *paths {
			vh.Routes = append(vh.Routes, snapshot.Route{Path: fmt.Sprintf("/p%d", j), PathType: snapshot.PathPrefix, Backend: be})
		}
		s.Hosts = append(s.Hosts, vh)
	}
	tmp := filepath.Join(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp")
	if err := os.WriteFile(tmp, snapshot.Seal(s), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		log.Fatal(err)
	}
}
