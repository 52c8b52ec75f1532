package e2e

import (
	"context"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/portico-dev/portico/controllers"
	"github.com/portico-dev/portico/controllers/render"
)

// operator is one Portico manager running in-process. The fault specs stop
// it and start others (a restart, two managers electing a leader), so the
// suite holds the current one in the variable manager.
type operator struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{} // closed when mgr.Start returned
	err    error         // what mgr.Start returned, once done is closed
}

// manager is the operator serving the suite now.
var manager *operator

// election configures a manager's leader election.
type election struct {
	id                  string // the Lease name
	lease, renew, retry time.Duration
}

// quickElection hands over within seconds, for the handover spec. Generous
// enough that a busy 2-core machine does not lose the lease by accident
// (losing it stops the manager with an error).
var quickElection = &election{id: "portico-operator.portico.dev", lease: 8 * time.Second, renew: 6 * time.Second, retry: time.Second}

// productionElection has the timings of cmd/main.go, on a Lease of its own.
var productionElection = &election{id: "portico-operator-production.portico.dev",
	lease: controllers.DefaultLeaseDuration, renew: controllers.DefaultRenewDeadline, retry: controllers.DefaultRetryPeriod}

// startOperator starts a manager with every Portico controller. With a
// non-nil le it competes for a Lease in the operator namespace.
func startOperator(le *election) *operator {
	opts := ctrl.Options{
		Scheme:                 controllers.NewScheme(),
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several managers in one process register the same controllers.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if le != nil {
		opts.LeaderElection = true
		opts.LeaderElectionID = le.id
		opts.LeaderElectionNamespace = operatorNamespace
		opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = &le.lease, &le.renew, &le.retry
	}
	mgr, err := ctrl.NewManager(cluster.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, render.Params{Namespace: operatorNamespace, Image: "portico:e2e", SnapshotPartSize: e2eSnapshotPartSize})).To(Succeed())
	mctx, mcancel := context.WithCancel(ctx)
	o := &operator{mgr: mgr, cancel: mcancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		o.err = mgr.Start(mctx)
	}()
	return o
}

// stop cancels the manager, waits until it has stopped and returns what
// its Start returned (a manager that lost its lease returns an error).
func (o *operator) stop() error {
	o.cancel()
	Eventually(o.done, 60*time.Second).Should(BeClosed(), "the manager stops within a minute")
	return o.err
}

// running reports whether the manager has not returned.
func (o *operator) running() bool {
	select {
	case <-o.done:
		return false
	default:
		return true
	}
}

// elected reports whether the manager leads (always true without leader election).
func (o *operator) elected() bool {
	select {
	case <-o.mgr.Elected():
		return true
	default:
		return false
	}
}

// operatorCounter sums the operator metric name over the series whose
// labels include want (process-wide registry shared by every manager).
func operatorCounter(name string, want map[string]string) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// reconciles is how many GatewayConfig reconciles finished, by any manager.
func reconciles() float64 {
	return operatorCounter("controller_runtime_reconcile_total", map[string]string{"controller": "gatewayconfig"})
}

// publishes is how many snapshots the operator wrote for instance.
func publishes(instance string) float64 {
	return operatorCounter("portico_snapshot_publishes_total", map[string]string{"gatewayconfig": instance})
}
