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

// Command idleconns measures the memory a proxy holds per idle keep-alive
// client connection: it opens -n connections to -addr (127.0.0.1 only), sends
// one GET on each so the proxy has served it, leaves them idle, and reports
// the growth of the proxy process's RSS (-pid, read from /proc) per 1,000
// connections. Bounded: every dial and read has a deadline, and all
// connections are closed at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// treeRSS sums VmRSS of pid and its direct children (nginx workers).
func treeRSS(pid int) int {
	total := rssKB(pid)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += rssKB(c)
		}
	}
	return total
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "proxy address (loopback only)")
	pid := flag.Int("pid", 0, "proxy process id")
	n := flag.Int("n", 1000, "connections")
	settle := flag.Duration("settle", 2*time.Second, "wait before measuring")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.0.0.1:") || *pid == 0 || *n > 20000 {
		log.Fatal("need -pid, a 127.0.0.1 address and -n <= 20000")
	}
	time.Sleep(*settle)
	before := treeRSS(*pid)
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range *n {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			log.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n"); err != nil {
			log.Fatalf("write %d: %v", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			log.Fatalf("read %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(*settle)
	after := treeRSS(*pid)
	fmt.Printf("conns=%d rss_before_kb=%d rss_after_kb=%d per_1000_conns_kb=%d\n",
		*n, before, after, (after-before)*1000 / *n)
}
