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

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, exported so dashboards and tests share one spelling.
const (
	MetricRequests      = "portico_gatewaypod_requests_total"
	MetricSnapshotSwaps = "portico_gatewaypod_snapshot_swaps_total"
	// MetricEjectedEndpoints is a gauge of endpoints out of rotation.
	MetricEjectedEndpoints = "portico_gatewaypod_ejected_endpoints"
)

// codeClasses are the values of the "code" label of MetricRequests.
var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

type metrics struct {
	requests [len(codeClasses)]prometheus.Counter
	swaps    prometheus.Counter
	ejected  prometheus.GaugeFunc
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
	}
	// Resolve every label value up front: no map lookup per request, and all
	// classes are exported from the start, at zero.
	for i, c := range codeClasses {
		m.requests[i] = reqs.WithLabelValues(c)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{reqs, m.swaps} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe counts one finished request with status code.
func (m *metrics) observe(code int) {
	i := code/100 - 1
	if i < 0 || i >= len(m.requests) {
		i = 4 // not a valid status: the client saw a broken response
	}
	m.requests[i].Inc()
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
