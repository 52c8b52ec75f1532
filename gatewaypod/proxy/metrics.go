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
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Metric names, exported so dashboards and tests share one spelling.
const (
	MetricRequests      = "portico_gatewaypod_requests_total"
	MetricSnapshotSwaps = "portico_gatewaypod_snapshot_swaps_total"
	// MetricEjectedEndpoints is a gauge of endpoints out of rotation.
	MetricEjectedEndpoints = "portico_gatewaypod_ejected_endpoints"
	// MetricRequestDuration is a histogram by backend and code class; the
	// backend label is a snapshot backend name, or BackendNone for answers
	// given before a backend was chosen (404, redirects, 400).
	MetricRequestDuration = "portico_gatewaypod_request_duration_seconds"
	// MetricCanaryRequests counts requests of routes that have canaries,
	// by route (the Ingress, "namespace/name") and role (primary, canary).
	MetricCanaryRequests = "portico_gatewaypod_canary_requests_total"
	// MetricSnapshotInfo is 1 for the version being served.
	MetricSnapshotInfo = "portico_gatewaypod_snapshot_info"
	// MetricSnapshotApplied is when the served snapshot was swapped in.
	MetricSnapshotApplied = "portico_gatewaypod_snapshot_applied_timestamp_seconds"
	// MetricLimitedRequests counts requests refused by a route's limits, by
	// kind (LimitKindRPS, LimitKindRPM: 429; LimitKindConnections: 503).
	MetricLimitedRequests = "portico_gatewaypod_limited_requests_total"
)

// BackendNone is the backend label of requests answered without a backend.
const BackendNone = "none"

// Values of the role label of MetricCanaryRequests.
const (
	RolePrimary = "primary"
	RoleCanary  = "canary"
)

// durationBuckets span a cache hit to a slow upload, in seconds.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// codeClasses are the values of the "code" label of MetricRequests.
var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

type metrics struct {
	requests [len(codeClasses)]prometheus.Counter
	swaps    prometheus.Counter
	ejected  prometheus.GaugeFunc
	duration *prometheus.HistogramVec
	edge     [len(codeClasses)]prometheus.Observer
	canary   *prometheus.CounterVec
	info     *prometheus.GaugeVec
	applied  prometheus.Gauge
	// accessDropped counts access log lines dropped (writer behind).
	accessDropped prometheus.Counter
	// limited counts requests refused by limits, by limitKind.
	limited [len(limitKinds)]prometheus.Counter
	// streamErrs counts HTTP/2 upstream streams cut or broken, by reason.
	streamErrs *prometheus.CounterVec

	mu       sync.Mutex
	backends map[string]bool // backend label values in use
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "Requests served by the proxy, by class of the status code sent to the client.",
	}, []string{"code"})
	m := &metrics{
		swaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricSnapshotSwaps,
			Help: "Routers swapped in, one per applied snapshot.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricRequestDuration,
			Help:    "Time from the request header to the end of the response, by backend and class of the status code.",
			Buckets: durationBuckets,
		}, []string{"backend", "code"}),
		canary: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCanaryRequests,
			Help: "Requests of routes with canaries, by route (Ingress) and backend role (primary or canary).",
		}, []string{"route", "role"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSnapshotInfo,
			Help: "1 for the snapshot version being served.",
		}, []string{"version"}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricSnapshotApplied,
			Help: "Unix time the served snapshot was swapped in.",
		}),
		accessDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricAccessLogDropped,
			Help: "Access log lines dropped because the writer to stdout fell behind.",
		}),
		streamErrs: newStreamErrors(),
		backends:   map[string]bool{},
	}
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricLimitedRequests,
		Help: "Requests refused by a route's per-client limits, by kind (rps and rpm: 429, connections: 503).",
	}, []string{"kind"})
	for i, k := range limitKinds {
		m.limited[i] = limited.WithLabelValues(k)
	}
	m.edge = m.durationFor(BackendNone)
	// Resolve every label value up front: no map lookup per request, and all
	// classes are exported from the start, at zero.
	for i, c := range codeClasses {
		m.requests[i] = reqs.WithLabelValues(c)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{reqs, m.swaps, m.duration, m.canary, m.info, m.applied, m.accessDropped, limited, m.streamErrs} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe counts one finished request with status code.
func (m *metrics) observe(code int) {
	m.requests[codeClass(code)].Inc()
}

// codeClass is the index in codeClasses of a status code.
func codeClass(code int) int {
	i := code/100 - 1
	if i < 0 || i >= len(codeClasses) {
		i = 4 // not a valid status: the client saw a broken response
	}
	return i
}

// durationFor resolves the histogram children of a backend.
func (m *metrics) durationFor(backend string) [len(codeClasses)]prometheus.Observer {
	m.mu.Lock()
	m.backends[backend] = true
	m.mu.Unlock()
	var out [len(codeClasses)]prometheus.Observer
	for i, c := range codeClasses {
		out[i] = m.duration.WithLabelValues(backend, c)
	}
	return out
}

// roleFor resolves the canary counter of a route's primary or canary.
func (m *metrics) roleFor(r *snapshot.Route, canary bool) prometheus.Counter {
	name := r.Source
	if name == "" {
		name = r.Backend.Name
	}
	role := RolePrimary
	if canary {
		role = RoleCanary
	}
	return m.canary.WithLabelValues(name, role)
}

// swapped records a new router and drops the series of backends it no
// longer has, so label values stay bounded by the snapshots served.
// Canary series (one pair per Ingress with canaries) are kept.
func (m *metrics) swapped(rt *router.Router) {
	m.swaps.Inc()
	m.info.Reset()
	m.info.WithLabelValues(rt.Version()).Set(1)
	m.applied.Set(float64(time.Now().UnixNano()) / 1e9)
	keep := map[string]bool{BackendNone: true}
	for _, n := range rt.BackendNames() {
		keep[n] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.backends {
		if !keep[n] {
			m.duration.DeletePartialMatch(prometheus.Labels{"backend": n})
			delete(m.backends, n)
		}
	}
}

// statusRecorder remembers the final status code written to the client.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	// 1xx other than 101 are informational and followed by the real status.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack on the
// underlying writer (streaming responses and protocol upgrades need them).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the code the client saw: 200 when the handler wrote nothing.
func (w *statusRecorder) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
