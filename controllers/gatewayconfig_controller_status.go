package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// statusFacts is everything the status of a GatewayConfig is computed from,
// gathered by the reconciler so that the setters below stay pure.
type statusFacts struct {
	// namespaceMissing is set when the instance namespace does not exist.
	namespaceMissing bool
	namespace        string
	// deployment is nil until it exists.
	deployment *appsv1.Deployment
	// classes are the IngressClasses binding the instance.
	classes []string
	// snapshotVersion is the version just published.
	snapshotVersion string
	// programmedReplicas counts ready pods reporting snapshotVersion.
	programmedReplicas int32
	addresses          []string
	// accepted and rejected count the Ingresses of snapshotVersion.
	accepted, rejected int32
	// paused is spec.paused: nothing is written but status.
	paused bool
	// conflict explains why objects could not be applied: another owner
	// holds one of the instance's names.
	conflict string
	// podProblem is a failure seen on gateway pods that needs a human.
	podProblem *problem
	// refusing counts gateway pods that refused their snapshot payload;
	// refusal says so for the Degraded condition (nil when none does).
	refusing int32
	refusal  *problem
	// snapshotProblem says why the compiled snapshot was not published.
	snapshotProblem *problem
}

// keepPublished makes the facts describe the snapshot already published
// (held back by the publish interval or spec.paused): its version and its Ingress counts,
// not the newer compile's. Otherwise Listening with the new counts could be
// reported while the pods still serve the older snapshot.
func (f *statusFacts) keepPublished(before *gatewayv1alpha1.GatewayConfig) {
	f.snapshotVersion = before.Status.Snapshot.Version
	f.accepted = before.Status.Snapshot.AcceptedIngresses
	f.rejected = before.Status.Snapshot.RejectedIngresses
}

// problem is a reason and message for a Degraded or Failed status.
type problem struct{ reason, message string }

func hasReason(conds []metav1.Condition, typ, reason string) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Reason == reason
}

// setStatus fills every status field from facts. It never touches phase on
// its own: phase is derived from the conditions by phaseOf.
func setStatus(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	st := &gc.Status
	st.ObservedGeneration = gc.Generation
	st.IngressClasses = f.classes
	st.Addresses = f.addresses
	st.Snapshot = gatewayv1alpha1.SnapshotStatus{
		Version: f.snapshotVersion, AcceptedIngresses: f.accepted, RejectedIngresses: f.rejected, ServingReplicas: f.programmedReplicas,
		RefusingReplicas: f.refusing,
	}
	st.Replicas, st.ReadyReplicas = 0, 0
	if d := f.deployment; d != nil {
		st.Replicas, st.ReadyReplicas = ptrDeref(d.Spec.Replicas, 1), d.Status.ReadyReplicas
	}
	setAcceptedCondition(gc, f)
	setAvailableCondition(gc, f)
	setProgressingCondition(gc, f)
	setDegradedCondition(gc, f)
	setProgrammedCondition(gc, f)
	st.Phase, st.Message = phaseOf(gc)
}

func setCondition(gc *gatewayv1alpha1.GatewayConfig, typ string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&gc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gc.Generation,
	})
}

func ptrDeref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func setAcceptedCondition(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	if f.conflict != "" {
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAccepted, false, gatewayv1alpha1.GatewayConfigReasonConflict, f.conflict)
		return
	}
	if f.paused {
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAccepted, true, gatewayv1alpha1.GatewayConfigReasonPaused,
			"spec.paused is true: owned objects and the snapshot are not reconciled until it is cleared")
		return
	}
	if f.namespaceMissing {
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAccepted, false, gatewayv1alpha1.GatewayConfigReasonNamespaceNotFound,
			fmt.Sprintf("namespace %q does not exist: create it or change spec.namespace", f.namespace))
		return
	}
	setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAccepted, true, gatewayv1alpha1.GatewayConfigReasonAccepted,
		fmt.Sprintf("objects are reconciled in namespace %q", f.namespace))
}

func setAvailableCondition(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	if d := f.deployment; d != nil && d.Status.AvailableReplicas > 0 {
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAvailable, true, gatewayv1alpha1.GatewayConfigReasonMinimumReplicasAvailable,
			fmt.Sprintf("%d of %d gateway pods available", d.Status.AvailableReplicas, d.Status.Replicas))
		return
	}
	setCondition(gc, gatewayv1alpha1.GatewayConfigConditionAvailable, false, gatewayv1alpha1.GatewayConfigReasonDeploymentUnavailable,
		"no gateway pod is available yet")
}

// deploymentCondition returns the Deployment's condition of type t, or nil.
func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	if d == nil {
		return nil
	}
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func setProgressingCondition(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	d := f.deployment
	switch {
	case f.paused:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgressing, false, gatewayv1alpha1.GatewayConfigReasonPaused, "reconciliation is paused")
	case d == nil:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgressing, true, gatewayv1alpha1.GatewayConfigReasonRollingOut, "creating the gateway Deployment")
	case progressDeadlineExceeded(d):
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgressing, false, gatewayv1alpha1.GatewayConfigReasonProgressDeadlineExceeded,
			deploymentCondition(d, appsv1.DeploymentProgressing).Message)
	case d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < ptrDeref(d.Spec.Replicas, 1) ||
		d.Status.Replicas > d.Status.UpdatedReplicas:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgressing, true, gatewayv1alpha1.GatewayConfigReasonRollingOut,
			fmt.Sprintf("%d of %d gateway pods updated", d.Status.UpdatedReplicas, ptrDeref(d.Spec.Replicas, 1)))
	default:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgressing, false, gatewayv1alpha1.GatewayConfigReasonRolloutComplete, "all gateway pods run the current template")
	}
}

func progressDeadlineExceeded(d *appsv1.Deployment) bool {
	c := deploymentCondition(d, appsv1.DeploymentProgressing)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
}

// degradation is the problem that makes the instance Degraded, or nil.
func degradation(f statusFacts) *problem {
	// The operator's own refusal first: it is what this reconcile decided,
	// and its Event is emitted when the condition's message changes.
	if f.snapshotProblem != nil {
		return f.snapshotProblem
	}
	if f.podProblem != nil {
		return f.podProblem
	}
	if f.refusal != nil {
		return f.refusal
	}
	if d := f.deployment; d != nil && progressDeadlineExceeded(d) {
		return &problem{gatewayv1alpha1.GatewayConfigReasonProgressDeadlineExceeded,
			"the gateway Deployment exceeded its progress deadline: " + deploymentCondition(d, appsv1.DeploymentProgressing).Message}
	}
	return nil
}

func setDegradedCondition(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	if p := degradation(f); p != nil {
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionDegraded, true, p.reason, p.message)
		return
	}
	setCondition(gc, gatewayv1alpha1.GatewayConfigConditionDegraded, false, gatewayv1alpha1.GatewayConfigReasonAsExpected, "no failure seen on the gateway pods")
}

func setProgrammedCondition(gc *gatewayv1alpha1.GatewayConfig, f statusFacts) {
	switch {
	case len(f.classes) == 0:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgrammed, false, gatewayv1alpha1.GatewayConfigReasonNoIngressClass,
			fmt.Sprintf("no IngressClass with spec.controller %q has spec.parameters naming this GatewayConfig", gatewayv1alpha1.ControllerName))
	case f.programmedReplicas == 0:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgrammed, false, gatewayv1alpha1.GatewayConfigReasonPending,
			fmt.Sprintf("no ready gateway pod serves snapshot %s yet", f.snapshotVersion))
	default:
		setCondition(gc, gatewayv1alpha1.GatewayConfigConditionProgrammed, true, gatewayv1alpha1.GatewayConfigReasonProgrammed,
			fmt.Sprintf("%d ready gateway pods serve snapshot %s", f.programmedReplicas, f.snapshotVersion))
	}
}

// phaseOf derives the phase and its message from the conditions; it is the
// only place a phase is decided.
func phaseOf(gc *gatewayv1alpha1.GatewayConfig) (gatewayv1alpha1.Phase, string) {
	conds := gc.Status.Conditions
	accepted := meta.FindStatusCondition(conds, gatewayv1alpha1.GatewayConfigConditionAccepted)
	if accepted != nil && accepted.Status == metav1.ConditionFalse {
		return gatewayv1alpha1.PhaseFailed, accepted.Message
	}
	available := meta.FindStatusCondition(conds, gatewayv1alpha1.GatewayConfigConditionAvailable)
	degraded := meta.FindStatusCondition(conds, gatewayv1alpha1.GatewayConfigConditionDegraded)
	if available == nil || available.Status != metav1.ConditionTrue {
		// Nothing serves: a failure that needs a human is Failed, not Pending.
		if degraded != nil && degraded.Status == metav1.ConditionTrue {
			return gatewayv1alpha1.PhaseFailed, degraded.Message
		}
		return gatewayv1alpha1.PhasePending, "waiting for a gateway pod to become available"
	}
	programmed := meta.FindStatusCondition(conds, gatewayv1alpha1.GatewayConfigConditionProgrammed)
	if programmed == nil || programmed.Status != metav1.ConditionTrue {
		msg := "running"
		if programmed != nil {
			msg = programmed.Message
		}
		return gatewayv1alpha1.PhaseRunning, msg
	}
	return gatewayv1alpha1.PhaseListening, programmed.Message
}
