package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// load describes steady client traffic through gateway pods. Every load is
// bounded twice: by MaxRequests and by Duration, whichever comes first.
type load struct {
	// Workers send requests one after the other, each on its own keep-alive
	// connections (default 4).
	Workers int
	// Interval is the pause between two requests of a worker (0: none).
	Interval time.Duration
	// MaxRequests bounds the requests sent, retries included (default 100000).
	MaxRequests int
	// Duration bounds the time the load runs.
	Duration time.Duration
	// Targets are the gateway pod IPs; worker requests go round-robin over
	// them, as through a Service.
	Targets []string
	// Port is the pod port (default podflags.DefaultHTTPPort).
	Port int
	// Host and Path make the request; Path may contain %d, the request number.
	Host, Path string
	// Timeout bounds one request (default 5s).
	Timeout time.Duration
	// RetryOnce sends a failed request once more, to the next target: a
	// client that retries, as behind a Service with several pods.
	RetryOnce bool
	// OK tells a good answer; default: status 200.
	OK func(code int, body string) bool
}

// loadResult counts the outcome of every request of a load.
type loadResult struct {
	// Sent counts requests (a retried request counts once), Failed those
	// whose final outcome was bad, Retried those sent a second time.
	Sent, Failed, Retried int
	// Outcomes counts final outcomes: "200", "502", "error: ..." ...
	Outcomes map[string]int
	// Latencies of all requests (final attempt), sorted.
	Latencies []time.Duration
	Elapsed   time.Duration
}

// Quantile returns the q-quantile (0..1) of the latencies.
func (r *loadResult) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

func (r *loadResult) String() string {
	return fmt.Sprintf("sent %d, failed %d, retried %d in %s (%.0f req/s); latency p50 %s p99 %s max %s; outcomes %v",
		r.Sent, r.Failed, r.Retried, r.Elapsed.Round(time.Millisecond), float64(r.Sent)/r.Elapsed.Seconds(),
		r.Quantile(0.5).Round(time.Microsecond), r.Quantile(0.99).Round(time.Microsecond),
		r.Quantile(1).Round(time.Microsecond), r.Outcomes)
}

// start runs the load in the background; the returned function stops it
// early (if still running) and returns the result. done is closed when the
// load ended by itself.
func (l load) start() (stop func() *loadResult, done <-chan struct{}) {
	if l.Workers == 0 {
		l.Workers = 4
	}
	if l.MaxRequests == 0 {
		l.MaxRequests = 100000
	}
	if l.Port == 0 {
		l.Port = podflags.DefaultHTTPPort
	}
	if l.Timeout == 0 {
		l.Timeout = 5 * time.Second
	}
	if l.OK == nil {
		l.OK = func(code int, _ string) bool { return code == http.StatusOK }
	}
	lctx, cancel := context.WithTimeout(ctx, l.Duration)
	var (
		mu     sync.Mutex
		res    = &loadResult{Outcomes: map[string]int{}}
		budget = l.MaxRequests
		wg     sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if budget == 0 {
			return false
		}
		budget--
		return true
	}
	begin := time.Now()
	for w := range l.Workers {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: l.Timeout,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			next := w // spread the workers' first requests over the targets
			for n := 0; lctx.Err() == nil && take(); n++ {
				path := l.Path
				if strings.Contains(path, "%d") {
					path = fmt.Sprintf(path, w*1_000_000+n)
				}
				outcome, ok, d := l.once(lctx, c, l.Targets[next%len(l.Targets)], path)
				next++
				retried := false
				if !ok && l.RetryOnce && lctx.Err() == nil {
					retried = true
					outcome, ok, d = l.once(lctx, c, l.Targets[next%len(l.Targets)], path)
					next++
				}
				if lctx.Err() != nil && !ok {
					break // cut by the end of the load, not a failure
				}
				mu.Lock()
				res.Sent++
				res.Outcomes[outcome]++
				res.Latencies = append(res.Latencies, d)
				if retried {
					res.Retried++
				}
				if !ok {
					res.Failed++
				}
				mu.Unlock()
				if l.Interval > 0 {
					select {
					case <-lctx.Done():
					case <-time.After(l.Interval):
					}
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	return func() *loadResult {
		cancel()
		<-finished
		res.Elapsed = time.Since(begin)
		slices.Sort(res.Latencies)
		return res
	}, finished
}

// run runs the load to its end and returns the result.
func (l load) run() *loadResult {
	stop, done := l.start()
	<-done
	return stop()
}

// once sends one request and classifies the answer.
func (l load) once(lctx context.Context, c *http.Client, ip, path string) (outcome string, ok bool, d time.Duration) {
	req, err := http.NewRequestWithContext(lctx, http.MethodGet, fmt.Sprintf("http://%s:%d%s", ip, l.Port, path), nil)
	if err != nil {
		return "error: " + err.Error(), false, 0
	}
	req.Host = l.Host
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return "error: " + errClass(err), false, time.Since(t0)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d = time.Since(t0)
	if err != nil {
		return "error: body: " + errClass(err), false, d
	}
	return fmt.Sprint(resp.StatusCode), l.OK(resp.StatusCode, string(b)), d
}

// errClass shortens a client error to its kind, for counting.
func errClass(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "EOF", "Timeout", "deadline", "broken pipe"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

func itoa(n int) string { return fmt.Sprint(n) }
