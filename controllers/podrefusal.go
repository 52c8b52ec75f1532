package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// EventReasonSnapshotRefusedByPods: gateway pods refused the snapshot
// payload they were given; emitted when the Degraded condition starts or
// changes to say so.
const EventReasonSnapshotRefusedByPods = gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods

// refusingPods counts the non-terminating gateway pods that show a refused
// snapshot (podflags.AnnotationSnapshotRefused, written by gatewaypod) and
// returns the problem that makes the instance Degraded, naming the first
// pod by name; nil when none refuses. pods is sorted by name.
func refusingPods(list []corev1.Pod) (int32, *problem) {
	var (
		n     int32
		first string
	)
	for i := range list {
		p := &list[i]
		v := p.Annotations[podflags.AnnotationSnapshotRefused]
		if v == "" || p.DeletionTimestamp != nil {
			continue
		}
		n++
		if first != "" {
			continue
		}
		r, err := podflags.ParseSnapshotRefusal(v)
		switch {
		case err != nil:
			first = fmt.Sprintf("pod %s: unreadable %s annotation", p.Name, podflags.AnnotationSnapshotRefused)
		case r.Version != "":
			first = fmt.Sprintf("pod %s refused snapshot %s (%s): %s", p.Name, r.Version, r.Reason, r.Message)
		default:
			first = fmt.Sprintf("pod %s refused the payload (%s): %s", p.Name, r.Reason, r.Message)
		}
	}
	if n == 0 {
		return 0, nil
	}
	pods, keep := "pods", "keep"
	if n == 1 {
		pods, keep = "pod", "keeps"
	}
	return n, &problem{gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods, fmt.Sprintf(
		"%d gateway %s refused the snapshot ConfigMap's payload and %s serving the last good snapshot; %s",
		n, pods, keep, strings.TrimSpace(first))}
}

// podRefusalChanged reports whether the freshly computed status says pods
// refuse a snapshot and the status before said otherwise (or said it with
// another message), so that its Warning Event comes once per change.
func podRefusalChanged(before, after *gatewayv1alpha1.GatewayConfig) (string, bool) {
	now := meta.FindStatusCondition(after.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
	if now == nil || now.Reason != gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods {
		return "", false
	}
	was := meta.FindStatusCondition(before.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
	if was != nil && was.Reason == now.Reason && was.Message == now.Message {
		return "", false
	}
	return now.Message, true
}
