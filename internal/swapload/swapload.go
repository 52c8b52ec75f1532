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

// Package swapload proves that snapshot swaps are invisible to clients: it
// drives keep-alive HTTP load through a gatewaypod proxy on 127.0.0.1
// while offering a sequence of snapshots through source.Source (decode,
// validate, compile the router, swap: the path a pod takes for a
// ConfigMap update), with a WebSocket-style upgraded connection opened
// before the first swap that must still echo after the last.
//
// Each load worker has its own client with at most one connection, so the
// number of TCP connections dialled equals the number of workers exactly
// when no connection was dropped. It is shared by the -race test in
// gatewaypod/proxy and the command in test/bench/swapload.
package swapload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-dev/portico/gatewaypod/proxy"
	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/gatewaypod/source"
)

// Config bounds a run: it ends after Requests requests or Timeout,
// whichever comes first (a timeout is a failure).
type Config struct {
	Workers  int
	Requests int
	Swaps    int
	Timeout  time.Duration
}

// Result is what a run measured.
type Result struct {
	// Requests completed, and those that failed (transport error, status
	// other than 200, short body); FailureSamples holds the first few.
	Requests, Failures int64
	FailureSamples     []string
	// Applied counts the swaps source.Offer applied (want Config.Swaps).
	Applied int
	// Dials counts client TCP connections (want Config.Workers), and
	// ServerConns the connections the front server accepted besides the
	// upgraded one; ServerClosed those it saw close before the end.
	Dials, ServerConns, ServerClosed int64
	// WebSocketEchoes counts the echoes on the connection opened before
	// the first swap (one before, one every 25 swaps, one after the last);
	// WebSocketErr is its first error.
	WebSocketEchoes int
	WebSocketErr    error
	// Elapsed is the load's duration; SwapMax and SwapMedian the time
	// Offer took (decode, validate, compile, swap).
	Elapsed, SwapMax, SwapMedian time.Duration
}

// Err summarizes every broken property, nil when the run was clean.
func (r *Result) Err(c Config) error {
	var errs []error
	if r.Failures > 0 {
		errs = append(errs, fmt.Errorf("%d of %d requests failed: %v", r.Failures, r.Requests, r.FailureSamples))
	}
	if r.Requests != int64(c.Requests) {
		errs = append(errs, fmt.Errorf("%d of %d requests completed within %s", r.Requests, c.Requests, c.Timeout))
	}
	if r.Applied != c.Swaps {
		errs = append(errs, fmt.Errorf("%d of %d swaps applied", r.Applied, c.Swaps))
	}
	if r.Dials != int64(c.Workers) || r.ServerConns != int64(c.Workers) || r.ServerClosed != 0 {
		errs = append(errs, fmt.Errorf("connections: %d dialled, %d accepted, %d closed during the run; want %d, %d, 0 (a dropped keep-alive connection is re-dialled)",
			r.Dials, r.ServerConns, r.ServerClosed, c.Workers, c.Workers))
	}
	if r.WebSocketErr != nil {
		errs = append(errs, fmt.Errorf("upgraded connection: %w", r.WebSocketErr))
	}
	return errors.Join(errs...)
}

// String is a one-line report.
func (r *Result) String() string {
	rps := float64(r.Requests) / r.Elapsed.Seconds()
	return fmt.Sprintf("requests=%d failures=%d elapsed=%s rps=%.0f swaps=%d swap_median=%s swap_max=%s dials=%d accepted=%d closed=%d ws_echoes=%d ws_err=%v",
		r.Requests, r.Failures, r.Elapsed.Round(time.Millisecond), rps, r.Applied, r.SwapMedian.Round(time.Microsecond),
		r.SwapMax.Round(time.Microsecond), r.Dials, r.ServerConns, r.ServerClosed, r.WebSocketEchoes, r.WebSocketErr)
}

// Run performs one bounded run.
func Run(cfg Config) (*Result, error) {
	if cfg.Workers < 1 || cfg.Requests < cfg.Workers || cfg.Swaps < 1 || cfg.Timeout <= 0 {
		return nil, errors.New("swapload: need Workers >= 1, Requests >= Workers, Swaps >= 1 and a Timeout")
	}
	var servers []*httptest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	start := func(h http.Handler) string {
		s := httptest.NewServer(h) // 127.0.0.1
		servers = append(servers, s)
		return s.Listener.Addr().String()
	}
	backends := []string{start(okHandler("a")), start(okHandler("b")), start(okHandler("c"))}
	ws := start(http.HandlerFunc(echoUpgrade))

	px, err := proxy.New(proxy.Options{})
	if err != nil {
		return nil, err
	}
	defer px.Close()
	var conns, closedConns atomic.Int64
	res := &Result{}
	front := httptest.NewUnstartedServer(px)
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closedConns.Add(1)
		}
	}
	front.Start()
	defer front.Close()

	src, err := source.New(source.Options{File: "/nonexistent/swapload", Apply: func(s *snapshot.Snapshot) error {
		rt, err := router.Compile(s)
		if err != nil {
			return err
		}
		px.Swap(rt)
		return nil
	}})
	if err != nil {
		return nil, err
	}
	payloads := make([][]byte, cfg.Swaps+1)
	for i := range payloads {
		payloads[i] = snapshot.Encode(snapshot.Seal(snapshotFor(i, backends, ws)))
	}
	if src.Offer(source.OriginConfigMap, payloads[0]) != source.Applied {
		return nil, errors.New("swapload: the first snapshot was not applied")
	}

	// The upgraded connection, opened before the first swap.
	wsConn, wsBuf, err := dialUpgrade(front.Listener.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("swapload: upgrade before the swaps: %w", err)
	}
	defer wsConn.Close()
	echo := func(msg string) {
		if res.WebSocketErr != nil {
			return
		}
		if err := echoOnce(wsConn, wsBuf, msg); err != nil {
			res.WebSocketErr = err
			return
		}
		res.WebSocketEchoes++
	}
	echo("before the first swap")

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	var (
		next, done atomic.Int64
		mu         sync.Mutex
		wg         sync.WaitGroup
		open       []*client
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		res.Failures++
		if len(res.FailureSamples) < 5 {
			res.FailureSamples = append(res.FailureSamples, s)
		}
	}
	frontAddr := front.Listener.Addr().String()
	began := time.Now()
	for range cfg.Workers {
		wg.Go(func() {
			var c *client
			defer func() {
				if c != nil {
					mu.Lock()
					open = append(open, c) // closed after the server's count is read
					mu.Unlock()
				}
			}()
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(cfg.Requests) {
					return
				}
				if c == nil {
					atomic.AddInt64(&res.Dials, 1)
					var err error
					if c, err = dial(ctx, frontAddr); err != nil {
						fail(fmt.Sprintf("request %d: dial: %v", n, err))
						done.Add(1)
						continue
					}
				}
				if err := c.get("/load"); err != nil {
					fail(fmt.Sprintf("request %d: %v", n, err))
					c.close()
					c = nil // the next request dials again, and Dials shows it
				}
				done.Add(1)
			}
		})
	}
	// The swapper spreads the swaps evenly over the requests.
	var swapTimes []time.Duration
	wg.Go(func() {
		for i := 1; i <= cfg.Swaps; i++ {
			due := int64(i) * int64(cfg.Requests) / int64(cfg.Swaps+1)
			for done.Load() < due && ctx.Err() == nil {
				time.Sleep(50 * time.Microsecond)
			}
			if ctx.Err() != nil {
				return
			}
			t0 := time.Now()
			if src.Offer(source.OriginConfigMap, payloads[i]) == source.Applied {
				res.Applied++
			}
			swapTimes = append(swapTimes, time.Since(t0))
			if i%25 == 0 {
				echo(fmt.Sprintf("after swap %d", i))
			}
		}
	})
	wg.Wait()
	res.Elapsed = time.Since(began)
	res.Requests = done.Load()
	echo("after the last swap")
	// Read the server's view before the clients hang up; the upgraded
	// connection is one of those it accepted.
	res.ServerConns, res.ServerClosed = conns.Load()-1, closedConns.Load()
	for _, c := range open {
		c.close()
	}
	if len(swapTimes) > 0 {
		slices.Sort(swapTimes)
		res.SwapMedian, res.SwapMax = swapTimes[len(swapTimes)/2], swapTimes[len(swapTimes)-1]
	}
	return res, nil
}

// client is one keep-alive HTTP/1.1 connection, written and read by hand
// so that nothing but a failure makes it dial again (net/http's client may
// retire a healthy connection when its write goroutine is slow).
type client struct {
	conn net.Conn
	br   *bufio.Reader
}

func dial(ctx context.Context, addr string) (*client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, br: bufio.NewReader(conn)}, nil
}

func (c *client) close() { _ = c.conn.Close() }

// get sends a GET and checks the answer: 200, the backend's full body, and
// the connection kept alive.
func (c *client) get(path string) error {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: load.test\r\nUser-Agent: swapload\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("status %d, body: %w", resp.StatusCode, err)
	case resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "backend ") || len(body) != len(okBody("x")):
		return fmt.Errorf("status %d, body %q", resp.StatusCode, body)
	case resp.Close:
		return errors.New("the proxy closed the keep-alive connection")
	}
	return nil
}

func okBody(name string) string { return "backend " + name + " " + strings.Repeat(".", 512) }

func okHandler(name string) http.HandlerFunc {
	body := okBody(name)
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

// snapshotFor is the i-th configuration: the load route "/load" always
// exists but moves between backends, balancers and neighbours; the
// upgrade route "/ws" exists only in even ones, so half the swaps remove
// the route of the open upgraded connection.
func snapshotFor(i int, backends []string, ws string) *snapshot.Snapshot {
	eps := [][]string{backends[:2], backends[1:], {backends[0], backends[2]}, backends}[i%4]
	load := snapshot.Route{Path: "/load", PathType: snapshot.PathPrefix, Source: fmt.Sprintf("swap/%d", i),
		Backend: snapshot.Backend{Name: fmt.Sprintf("swap/load:%d", i%3), Endpoints: eps}}
	switch i % 3 {
	case 1:
		load.Balancer = &snapshot.Balancer{Policy: snapshot.BalanceLeastConn}
	case 2:
		load.Balancer = &snapshot.Balancer{HashBy: "$remote_addr"}
	}
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{
		{Host: "", Routes: []snapshot.Route{load}},
		{Host: fmt.Sprintf("swap-%d.test", i), Routes: []snapshot.Route{{Path: "/", PathType: snapshot.PathPrefix,
			Backend: snapshot.Backend{Name: "swap/other:80", Endpoints: backends[2:]}}}},
	}}
	if i%2 == 0 {
		s.Hosts[0].Routes = append(s.Hosts[0].Routes, snapshot.Route{Path: "/ws", PathType: snapshot.PathPrefix,
			Backend: snapshot.Backend{Name: "swap/ws:80", Endpoints: []string{ws}}})
	}
	return s
}

// echoUpgrade answers "Upgrade: websocket" with 101 and echoes bytes: the
// proxy only tunnels after the 101, so a byte echo is a faithful
// WebSocket stand-in.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	_ = brw.Flush()
	_, _ = io.Copy(c, brw)
}

func dialUpgrade(addr string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, nil, fmt.Errorf("status %d, want 101", resp.StatusCode)
	}
	return c, br, nil
}

func echoOnce(c net.Conn, br *bufio.Reader, msg string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return fmt.Errorf("write %q: %w", msg, err)
	}
	got, err := br.ReadString('\n')
	if err != nil || got != msg+"\n" {
		return fmt.Errorf("echo of %q = %q, %v", msg, got, err)
	}
	return nil
}
