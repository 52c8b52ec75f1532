package controllers

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/compile"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// EventReasonSnapshotRefused: a compiled snapshot was not published (it
// fails validation or is too large); the last good one stays.
const EventReasonSnapshotRefused = "SnapshotRefused"

var (
	metricSnapshotRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_snapshot_refused_total",
		Help: "Compiled snapshots not published, by reason (SnapshotInvalid, SnapshotTooLarge); the last good one stayed. Counted once per new refusal.",
	}, []string{"gatewayconfig", "reason"})
	metricSnapshotConfigMaps = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portico_snapshot_configmaps",
		Help: "ConfigMaps the current snapshot is written to: 1, or the part count of a split snapshot.",
	}, []string{"gatewayconfig"})
)

func init() {
	metrics.Registry.MustRegister(metricSnapshotRefused, metricSnapshotConfigMaps)
}

// checkSnapshot runs, on the bytes about to be written, what a gateway pod
// runs on the bytes it reads: decode (decompressing) and validate. A snapshot
// that fails here would be refused by every pod, so it is never published.
func checkSnapshot(out compile.Output) error {
	got, err := snapshot.Decode(out.Encoded)
	if err != nil {
		return err
	}
	if got.Version != out.Snapshot.Version {
		return fmt.Errorf("encoded snapshot decodes to version %s, compiled %s", got.Version, out.Snapshot.Version)
	}
	return nil
}

// snapshotConfigMaps checks the compiled snapshot and returns the
// ConfigMaps that carry it (parts first, head last), or why it cannot be
// published.
func snapshotConfigMaps(inst render.Instance, out compile.Output, partSize int) ([]*corev1.ConfigMap, *problem) {
	if err := checkSnapshot(out); err != nil {
		return nil, &problem{gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid, fmt.Sprintf(
			"snapshot %s fails validation and is not published; the gateway pods keep the last good one: %v", out.Snapshot.Version, err)}
	}
	cms, err := inst.SnapshotConfigMaps(out.Encoded, out.Snapshot.Version, partSize)
	if tl := (*snapshot.TooLargeError)(nil); errors.As(err, &tl) {
		return nil, &problem{gatewayv1alpha1.GatewayConfigReasonSnapshotTooLarge, fmt.Sprintf(
			"snapshot %s is not published: %v; split the Ingresses over more instances", out.Snapshot.Version, err)}
	} else if err != nil {
		return nil, &problem{gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid, err.Error()}
	}
	return cms, nil
}

// newRefusal reports whether p differs from what the Degraded condition
// already says, so the Event and metric come once per change.
func newRefusal(before *gatewayv1alpha1.GatewayConfig, p *problem) bool {
	c := meta.FindStatusCondition(before.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
	return c == nil || c.Reason != p.reason || c.Message != p.message
}

// unwantedParts are the part ConfigMaps a snapshot in n ConfigMaps does
// not use; they are deleted after the head has moved to the new snapshot.
func unwantedParts(inst render.Instance, n int) []string {
	return inst.PartConfigMaps()[max(n-1, 0):]
}
