package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// Operator metrics, served with controller-runtime's own on the manager's
// metrics endpoint. Labels are GatewayConfig names: bounded by the number of
// instances, never by Ingress or request data.
var (
	metricPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_gatewayconfig_phase",
		Help: "1 for the current phase of each GatewayConfig, 0 for the others.",
	}, []string{"gatewayconfig", "phase"})
	metricIngresses = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_gatewayconfig_ingresses",
		Help: "Ingresses of the bound classes by compile result (accepted, rejected).",
	}, []string{"gatewayconfig", "result"})
	metricServing = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_gatewayconfig_serving_replicas",
		Help: "Ready gateway pods serving the current snapshot.",
	}, []string{"gatewayconfig"})
	metricRefusing = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_gatewayconfig_refusing_replicas",
		Help: "Gateway pods that refused their snapshot payload and serve their last good one.",
	}, []string{"gatewayconfig"})
	metricPublishes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_snapshot_publishes_total",
		Help: "Snapshots written to an instance's ConfigMap (a new version).",
	}, []string{"gatewayconfig"})
	metricSnapshotBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_snapshot_bytes",
		Help: "Encoded size of the current snapshot; ConfigMaps cap at 1 MiB.",
	}, []string{"gatewayconfig"})
)

func init() {
	metrics.Registry.MustRegister(metricPhase, metricIngresses, metricServing, metricRefusing, metricPublishes, metricSnapshotBytes)
}

var phases = []gatewayv1alpha1.Phase{gatewayv1alpha1.PhasePending, gatewayv1alpha1.PhaseRunning, gatewayv1alpha1.PhaseListening, gatewayv1alpha1.PhaseFailed}

// recordStatusMetrics mirrors a freshly computed status into the gauges.
func recordStatusMetrics(gc *gatewayv1alpha1.GatewayConfig) {
	for _, p := range phases {
		v := 0.0
		if gc.Status.Phase == p {
			v = 1
		}
		metricPhase.WithLabelValues(gc.Name, string(p)).Set(v)
	}
	metricIngresses.WithLabelValues(gc.Name, "accepted").Set(float64(gc.Status.Snapshot.AcceptedIngresses))
	metricIngresses.WithLabelValues(gc.Name, "rejected").Set(float64(gc.Status.Snapshot.RejectedIngresses))
	metricServing.WithLabelValues(gc.Name).Set(float64(gc.Status.Snapshot.ServingReplicas))
	metricRefusing.WithLabelValues(gc.Name).Set(float64(gc.Status.Snapshot.RefusingReplicas))
}

// forgetMetrics drops the series of a deleted GatewayConfig.
func forgetMetrics(name string) {
	for _, v := range []*prometheus.GaugeVec{metricPhase, metricIngresses, metricServing, metricRefusing, metricSnapshotBytes, metricSnapshotConfigMaps} {
		v.DeletePartialMatch(prometheus.Labels{"gatewayconfig": name})
	}
	for _, v := range []*prometheus.CounterVec{metricPublishes, metricSnapshotRefused} {
		v.DeletePartialMatch(prometheus.Labels{"gatewayconfig": name})
	}
}
