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

package healthcheck

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Check is an active health check configuration. Two endpoints with equal
// Checks are probed the same way; an endpoint named with two different
// Checks (two backends, two configurations) gets two checkers.
type Check struct {
	// Path, when set, makes the probe an HTTP GET that passes on a Status
	// code (redirects are not followed); "" means a TCP connect.
	Path string
	// Port is probed instead of the endpoint's port; 0 keeps it.
	Port int
	// Interval between probes, and Timeout of one probe.
	Interval, Timeout time.Duration
	// Healthy and Unhealthy are the consecutive successes and failures that
	// change the state; values below 1 count as 1.
	Healthy, Unhealthy int
	// GRPC makes the probe a grpc.health.v1.Health/Check call about
	// Service that passes on SERVING (Path is then unused).
	GRPC    bool
	Service string
	// Host is the Host header (gRPC authority) of HTTP and gRPC probes and,
	// with TLS, the server name TLS may send (see TLSSource); "" means the
	// endpoint address.
	Host string
	// Status lists the HTTP status codes that pass, in the syntax of
	// snapshot.ParseStatusRanges; "" (or an unparsable list) means 2xx or 3xx.
	Status string
	// TLS, when set, runs HTTP and gRPC probes over TLS with its
	// configuration; nil means plain text (h2c for gRPC).
	TLS TLSSource
}

// CheckKey names one checker: an endpoint address and its Check.
type CheckKey struct {
	Addr  string
	Check Check
}

// HealthEvent reports a checker's state change, for logs and metrics.
type HealthEvent struct {
	Key     CheckKey
	Healthy bool
	Err     error // the last probe's error when unhealthy
}

// Checkers runs the active health checks of a process. Each checker is one
// goroutine probing one endpoint; Sync starts the ones a new snapshot needs
// and stops (and waits for) the ones it no longer names, so checkers, and
// the state they hold, survive snapshot swaps that keep them.
//
// A checker marks its endpoint's shared state in the Registry: while any
// checker of an address reports it unhealthy, policies skip it, as they
// skip passively ejected endpoints. Endpoints start healthy (a new endpoint
// gets traffic at once, as it would without checks) and the first probe
// runs immediately.
type Checkers struct {
	reg      *balancer.Registry
	client   *http.Client
	h2       *http2.Transport // gRPC probes: one client connection per probe
	dialer   net.Dialer
	onChange func(HealthEvent)

	mu      sync.Mutex
	running map[CheckKey]*checker
}

// NewCheckers returns a Checkers marking endpoints of reg. onChange, when
// not nil, is called (from the checker's goroutine) on every state change.
func NewCheckers(reg *balancer.Registry, onChange func(HealthEvent)) *Checkers {
	c := &Checkers{
		reg: reg,
		h2:  &http2.Transport{AllowHTTP: true, DisableCompression: true},
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		onChange: onChange,
		running:  map[CheckKey]*checker{},
	}
	c.client.Transport = &http.Transport{
		Proxy:              nil,
		DisableKeepAlives:  true, // every probe opens a connection: that is what is being checked
		DisableCompression: true,
		DialTLSContext:     c.dialTLS,
	}
	return c
}

// Sync makes the running checkers exactly want: it starts the missing ones
// and stops the others, waiting until their goroutines have returned.
func (c *Checkers) Sync(want []CheckKey) {
	keep := make(map[CheckKey]bool, len(want))
	for _, k := range want {
		keep[k] = true
	}
	c.mu.Lock()
	var stopped []*checker
	for k, ck := range c.running {
		if !keep[k] {
			delete(c.running, k)
			stopped = append(stopped, ck)
		}
	}
	for k := range keep {
		if c.running[k] == nil {
			ck := &checker{cs: c, key: k, stop: make(chan struct{}), done: make(chan struct{}), accept: acceptedStatus(k.Check.Status)}
			ck.ctx, ck.cancel = context.WithCancel(context.Background())
			c.running[k] = ck
			go ck.run()
		}
	}
	c.mu.Unlock()
	for _, ck := range stopped {
		ck.halt()
	}
}

// Close stops every checker.
func (c *Checkers) Close() { c.Sync(nil) }

// Len is the number of running checkers.
func (c *Checkers) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.running)
}

// Healthy reports the state of the checker of k, and whether it runs.
func (c *Checkers) Healthy(k CheckKey) (healthy, ok bool) {
	c.mu.Lock()
	ck := c.running[k]
	c.mu.Unlock()
	if ck == nil {
		return false, false
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return !ck.down, true
}

// checker probes one endpoint.
type checker struct {
	cs     *Checkers
	key    CheckKey
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	accept []snapshot.StatusRange // passing HTTP status codes

	mu        sync.Mutex
	down      bool               // reported unhealthy
	ep        *balancer.Endpoint // whose unhealthy count holds our mark while down
	successes int
	failures  int
}

func (ck *checker) run() {
	defer close(ck.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ck.stop:
			return
		case <-t.C:
		}
		err := ck.cs.probe(ck.ctx, ck.key, ck.accept)
		if ck.ctx.Err() != nil {
			return
		}
		ck.record(err)
		t.Reset(jitter(ck.key.Check.Interval))
	}
}

// jitter spreads probes over ±10 % of the interval, so checkers started by
// one swap do not probe in lockstep forever.
func jitter(d time.Duration) time.Duration {
	d = max(d, time.Millisecond)
	if spread := d / 5; spread > 0 {
		return d - d/10 + rand.N(spread)
	}
	return d
}

// halt stops the goroutine, waits for it, and lifts our mark.
func (ck *checker) halt() {
	ck.cancel()
	close(ck.stop)
	<-ck.done
	ck.mu.Lock()
	defer ck.mu.Unlock()
	if ck.down && ck.ep != nil {
		ck.ep.CheckRecovered()
	}
	ck.down, ck.ep = false, nil
}

func (ck *checker) record(err error) {
	// Registry.Endpoint refreshes the endpoint's last use, so the state of
	// a checked endpoint is never swept while its checker runs; if it was
	// swept before (and recreated), the mark moves to the new value.
	cur := ck.cs.reg.Endpoint(ck.key.Addr)
	ck.mu.Lock()
	if ck.down && ck.ep != cur {
		cur.TakeCheckMark(ck.ep)
	}
	ck.ep = cur
	changed := false
	c := ck.key.Check
	if err == nil {
		ck.failures = 0
		ck.successes++
		if ck.down && ck.successes >= max(c.Healthy, 1) {
			ck.down, changed = false, true
			cur.CheckRecovered()
		}
	} else {
		ck.successes = 0
		ck.failures++
		if !ck.down && ck.failures >= max(c.Unhealthy, 1) {
			ck.down, changed = true, true
			cur.CheckFailed()
		}
	}
	healthy := !ck.down
	ck.mu.Unlock()
	if changed && ck.cs.onChange != nil {
		ck.cs.onChange(HealthEvent{Key: ck.key, Healthy: healthy, Err: err})
	}
}

// probe runs one check of k; accept lists the passing HTTP status codes.
func (c *Checkers) probe(ctx context.Context, k CheckKey, accept []snapshot.StatusRange) error {
	addr := k.Addr
	if k.Check.Port > 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return err
		}
		addr = net.JoinHostPort(host, strconv.Itoa(k.Check.Port))
	}
	timeout := k.Check.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if k.Check.GRPC {
		return c.probeGRPC(ctx, addr, k.Check)
	}
	if k.Check.Path == "" {
		conn, err := c.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	scheme := "http://"
	if k.Check.TLS != nil {
		cfg, err := probeTLS(k.Check, "http/1.1")
		if err != nil {
			return err
		}
		ctx = context.WithValue(ctx, tlsConfigKey{}, cfg)
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr+k.Check.Path, nil)
	if err != nil {
		return err
	}
	req.Host = k.Check.Host // "" sends the endpoint address
	req.Header.Set("User-Agent", "portico-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !statusPasses(accept, resp.StatusCode) {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// StatusError is an HTTP check's answer outside the accepted codes.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "health check answered " + strconv.Itoa(e.Code) }
