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

package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// lockedBuffer is an io.Writer safe for the writer goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// accessLines closes p (which writes the queued lines out) and decodes them.
func accessLines(t *testing.T, p *Proxy, out *lockedBuffer) []map[string]any {
	t.Helper()
	p.Close()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestAccessLogFields: the default fields are all there, with the values of
// the request, and nothing more: no query string, no credentials.
func TestAccessLogFields(t *testing.T) {
	b := newBackend(t, "b")
	out := &lockedBuffer{}
	p, front := newProxyOpts(t, Options{AccessLog: AccessLogOptions{SampleRate: 1, Out: out}})
	p.Swap(compile(t, oneRoute("b", addr(b))))
	resp, body := get(t, front.Client(), front.URL+"/api/items?token=s3cret", map[string]string{
		"Host": "app.test", "Authorization": "Bearer s3cret", "Cookie": "session=s3cret", "User-Agent": "tester/1",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	get(t, front.Client(), front.URL+"/x", map[string]string{"X-Request-Id": "client-id-1"})
	raw := out.String()
	lines := accessLines(t, p, out)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), raw)
	}
	raw = out.String()
	if strings.Contains(raw, "s3cret") || strings.Contains(raw, "token") {
		t.Errorf("access log leaks the query or credentials:\n%s", raw)
	}
	l := lines[0]
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Sorted(slices.Values(DefaultAccessLogFields))
	if !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	sentID := decodeEcho(t, body).Header.Get("X-Request-Id")
	for k, v := range map[string]any{"remote": "127.0.0.1", "method": "GET", "host": "app.test", "path": "/api/items",
		"status": 200.0, "bytes": float64(len(body)), "backend": "b", "request_id": sentID} {
		if l[k] != v {
			t.Errorf("%s = %v, want %v", k, l[k], v)
		}
	}
	if sentID == "" {
		t.Error("no X-Request-Id generated")
	}
	if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v", l["duration_ms"])
	}
	if ts, ok := l["time"].(string); !ok || !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("time = %v", l["time"])
	}
	if lines[1]["request_id"] != "client-id-1" || lines[1]["path"] != "/x" {
		t.Errorf("second line = %v", lines[1])
	}
}

// TestAccessLogChosenFields: only the fields asked for, in their order;
// the query string only when asked for; proxy answers have no backend.
func TestAccessLogChosenFields(t *testing.T) {
	b := newBackend(t, "b")
	out := &lockedBuffer{}
	fields := []string{"status", "endpoint", "user_agent", "protocol", "query", "backend", "path"}
	p, front := newProxyOpts(t, Options{AccessLog: AccessLogOptions{SampleRate: 1, Out: out, Fields: fields}})
	s := oneRoute("b", addr(b))
	s.Hosts[0].Host = "app.test"
	p.Swap(compile(t, s))
	get(t, front.Client(), front.URL+"/q?a=1&b=%22", map[string]string{"Host": "app.test", "User-Agent": "ua \"quoted\" \\ é"})
	get(t, front.Client(), front.URL+"/none", map[string]string{"Host": "other.test"})
	raw := out.String()
	lines := accessLines(t, p, out)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), raw)
	}
	first := strings.SplitN(out.String(), "\n", 2)[0]
	if !strings.HasPrefix(first, `{"status":200,"endpoint":"`+addr(b)+`","user_agent":`) {
		t.Errorf("field order: %s", first)
	}
	want := map[string]any{"status": 200.0, "endpoint": addr(b), "user_agent": "ua \"quoted\" \\ é", "protocol": "HTTP/1.1",
		"query": "a=1&b=%22", "backend": "b", "path": "/q"}
	if len(lines[0]) != len(want) {
		t.Errorf("line = %v", lines[0])
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, lines[0][k], v)
		}
	}
	if l := lines[1]; l["status"] != 404.0 || l["backend"] != "" || l["endpoint"] != "" {
		t.Errorf("404 line = %v", l)
	}
	if _, err := New(Options{AccessLog: AccessLogOptions{SampleRate: 1, Fields: []string{"authorization"}}}); err == nil {
		t.Error("unknown field accepted")
	}
}

// TestAccessLogSampling: with a seeded source, a 10 % rate logs about 10 %
// of the requests; off and rate 0 log nothing.
func TestAccessLogSampling(t *testing.T) {
	const n = 2000
	run := func(opts AccessLogOptions) (int, *Proxy) {
		b := cannedBackendT(t)
		out := &lockedBuffer{}
		opts.Out = out
		p, err := New(Options{AccessLog: opts})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		p.Swap(compile(t, oneRoute("b", b)))
		req, _ := http.NewRequest(http.MethodGet, "http://app.test/", nil)
		req.RequestURI, req.RemoteAddr = "/", "192.0.2.1:1"
		w := &discardWriter{h: http.Header{}}
		for range n {
			clear(w.h)
			p.ServeHTTP(w, req)
		}
		return len(accessLines(t, p, out)), p
	}
	src := rand.New(rand.NewPCG(1, 2))
	got, _ := run(AccessLogOptions{SampleRate: 0.1, Rand: src.Float64, Buffer: n})
	// Binomial(2000, 0.1): mean 200, sd 13.4; the seed makes it exact, the
	// bounds (5 sd) say what any seed should give.
	if got < 133 || got > 267 {
		t.Errorf("rate 0.1 logged %d of %d", got, n)
	}
	if got, _ := run(AccessLogOptions{SampleRate: 1, Buffer: n}); got != n {
		t.Errorf("rate 1 logged %d of %d", got, n)
	}
	if got, _ := run(AccessLogOptions{}); got != 0 {
		t.Errorf("off logged %d", got)
	}
	if _, err := New(Options{AccessLog: AccessLogOptions{SampleRate: 1.5}}); err == nil {
		t.Error("rate 1.5 accepted")
	}
}

// TestAccessLogOffWritesNothing: the zero options never touch the output.
func TestAccessLogOffWritesNothing(t *testing.T) {
	b := newBackend(t, "b")
	out := &lockedBuffer{}
	p, front := newProxyOpts(t, Options{AccessLog: AccessLogOptions{Out: out, SampleRate: 0}})
	if p.access != nil {
		t.Fatal("access log set up while off")
	}
	p.Swap(compile(t, oneRoute("b", addr(b))))
	get(t, front.Client(), front.URL+"/", nil)
	p.Close()
	if out.String() != "" {
		t.Errorf("off wrote %q", out.String())
	}
}

// TestAccessLogDrops: when the writer is behind, lines are dropped and
// counted, and the request does not wait.
func TestAccessLogDrops(t *testing.T) {
	reg := prometheus.NewRegistry()
	blocked := make(chan struct{})
	out := writerFunc(func(b []byte) (int, error) { <-blocked; return len(b), nil })
	p, err := New(Options{Registerer: reg, AccessLog: AccessLogOptions{SampleRate: 1, Out: out, Buffer: 4}})
	if err != nil {
		t.Fatal(err)
	}
	p.Swap(compile(t, oneRoute("b", cannedBackendT(t))))
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/", nil)
	req.RequestURI, req.RemoteAddr = "/", "192.0.2.1:1"
	w := &discardWriter{h: http.Header{}}
	for range 20 {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
	// At most 4 queued and 1 held by the blocked writer.
	if got := testutil.ToFloat64(p.metrics.accessDropped); got < 15 {
		t.Errorf("dropped = %v, want >= 15", got)
	}
	close(blocked)
	p.Close()
	if n, err := testutil.GatherAndCount(reg, MetricAccessLogDropped); err != nil || n != 1 {
		t.Errorf("%s series = %d, %v", MetricAccessLogDropped, n, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestAccessLogFieldNamesMatchFlags: the command line offers exactly the
// fields the proxy knows, with the same default.
func TestAccessLogFieldNamesMatchFlags(t *testing.T) {
	if got := AccessLogFieldNames(); !slices.Equal(got, podflags.AccessLogFieldNames) {
		t.Errorf("proxy fields %v, podflags %v", got, podflags.AccessLogFieldNames)
	}
	if !slices.Equal(DefaultAccessLogFields, podflags.DefaultAccessLogFields) {
		t.Errorf("proxy default %v, podflags %v", DefaultAccessLogFields, podflags.DefaultAccessLogFields)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "ctl\x00\x1f\n\t\r", "utf8 é ✓", "bad \xff\xfe end", "\u2028"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want && strings.ReplaceAll(got, "\ufffd\ufffd", "\ufffd") != want {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
}

// cannedBackendT is cannedBackend for tests.
func cannedBackendT(t *testing.T) string {
	t.Helper()
	return cannedBackend(t)
}

var _ io.Writer = writerFunc(nil)
