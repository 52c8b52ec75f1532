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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/gatewaypod/healthcheck"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Endpoint health metric names. Their labels are a backend name and an
// endpoint address of the snapshot being served, and nothing else: series
// of endpoints that left the snapshot disappear with it.
const (
	// MetricEndpointHealthy is 1 while an endpoint of a backend is in
	// rotation, 0 while passive health or an active check holds it out.
	MetricEndpointHealthy = "portico_gatewaypod_endpoint_healthy"
	// MetricEndpointEjections counts the times an endpoint was taken out of
	// rotation, by reason (EjectionPassive, EjectionActive), since this
	// pod first held state for it.
	MetricEndpointEjections = "portico_gatewaypod_endpoint_ejections_total"
)

// Values of the reason label of MetricEndpointEjections.
const (
	// EjectionPassive: consecutive connect errors or 5xx answers.
	EjectionPassive = "passive"
	// EjectionActive: an active health check crossed its unhealthy threshold.
	EjectionActive = "active"
)

// health runs the active checks a router asks for and exports the state
// of the router's endpoints.
type health struct {
	p      *Proxy
	checks *healthcheck.Checkers
	// mu serializes syncs, so concurrent Swaps leave the checkers of the
	// router that is current when the last one returns.
	mu sync.Mutex

	healthyDesc, ejectionsDesc *prometheus.Desc
}

func newHealth(p *Proxy) *health {
	h := &health{p: p,
		healthyDesc: prometheus.NewDesc(MetricEndpointHealthy,
			"1 while the endpoint of the backend is in rotation, 0 while passive health or an active health check holds it out.",
			[]string{"backend", "endpoint"}, nil),
		ejectionsDesc: prometheus.NewDesc(MetricEndpointEjections,
			"Times the endpoint was taken out of rotation, by reason: passive (consecutive connect errors or 5xx) or active (health check).",
			[]string{"backend", "endpoint", "reason"}, nil),
	}
	h.checks = healthcheck.NewCheckers(p.registry, func(ev healthcheck.HealthEvent) {
		if ev.Healthy {
			p.log.Info("Endpoint passes its health check again", "endpoint", ev.Key.Addr, "path", ev.Key.Check.Path)
		} else {
			p.log.Warn("Endpoint fails its health check, out of rotation", "endpoint", ev.Key.Addr, "path", ev.Key.Check.Path, "err", ev.Err)
		}
	})
	return h
}

// checkOf converts a snapshot check.
func checkOf(hc *snapshot.HealthCheck) healthcheck.Check {
	return healthcheck.Check{
		Path: hc.Path, Port: hc.Port,
		Interval: time.Duration(hc.IntervalMs) * time.Millisecond,
		Timeout:  time.Duration(hc.TimeoutMs) * time.Millisecond,
		Healthy:  hc.HealthyThreshold, Unhealthy: hc.UnhealthyThreshold,
		GRPC: hc.GRPC, Service: hc.GRPCService, Host: hc.Host, Status: hc.Status,
	}
}

// sync runs exactly the checkers the current router needs: one per
// distinct endpoint and check configuration.
func (h *health) sync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	var want []healthcheck.CheckKey
	if rt := h.p.Router(); rt != nil {
		ups := rt.BackendUpstreams()
		for _, b := range rt.Backends() {
			if b.HealthCheck == nil {
				continue
			}
			c := h.p.checkFor(b, ups[b])
			for _, a := range b.Endpoints {
				want = append(want, healthcheck.CheckKey{Addr: a, Check: c})
			}
		}
	}
	h.checks.Sync(want)
}

func (h *health) close() { h.checks.Close() }

// Describe implements prometheus.Collector.
func (h *health) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.healthyDesc
	ch <- h.ejectionsDesc
}

// Collect implements prometheus.Collector: one series per backend name
// and endpoint address of the current router.
func (h *health) Collect(ch chan<- prometheus.Metric) {
	rt := h.p.Router()
	if rt == nil {
		return
	}
	type key struct{ backend, addr string }
	seen := map[key]bool{}
	now := time.Now()
	for _, b := range rt.Backends() {
		for _, a := range b.Endpoints {
			k := key{b.Name, a}
			if seen[k] {
				continue
			}
			seen[k] = true
			up, passive, active := 1.0, uint64(0), uint64(0)
			if ep := h.p.registry.Lookup(a); ep != nil {
				if !ep.Available(now) {
					up = 0
				}
				passive, active = ep.Ejections()
			}
			ch <- prometheus.MustNewConstMetric(h.healthyDesc, prometheus.GaugeValue, up, b.Name, a)
			ch <- prometheus.MustNewConstMetric(h.ejectionsDesc, prometheus.CounterValue, float64(passive), b.Name, a, EjectionPassive)
			ch <- prometheus.MustNewConstMetric(h.ejectionsDesc, prometheus.CounterValue, float64(active), b.Name, a, EjectionActive)
		}
	}
}
