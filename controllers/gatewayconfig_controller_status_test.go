package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

func TestSetStatusPhase(t *testing.T) {
	available := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 2, AvailableReplicas: 1, ReadyReplicas: 1}}
	tests := map[string]struct {
		facts      statusFacts
		want       gatewayv1alpha1.Phase
		programmed string
	}{
		"namespace missing is Failed": {
			facts: statusFacts{namespaceMissing: true, namespace: "nope"}, want: gatewayv1alpha1.PhaseFailed,
			programmed: gatewayv1alpha1.GatewayConfigReasonNoIngressClass,
		},
		"no deployment yet is Pending": {
			facts: statusFacts{namespace: "ns", classes: []string{"c"}}, want: gatewayv1alpha1.PhasePending,
			programmed: gatewayv1alpha1.GatewayConfigReasonPending,
		},
		"available but unbound is Running": {
			facts: statusFacts{namespace: "ns", deployment: available, programmedReplicas: 1}, want: gatewayv1alpha1.PhaseRunning,
			programmed: gatewayv1alpha1.GatewayConfigReasonNoIngressClass,
		},
		"available, bound, no pod on the current snapshot is Running": {
			facts: statusFacts{namespace: "ns", deployment: available, classes: []string{"c"}}, want: gatewayv1alpha1.PhaseRunning,
			programmed: gatewayv1alpha1.GatewayConfigReasonPending,
		},
		"available, bound and programmed is Listening": {
			facts: statusFacts{namespace: "ns", deployment: available, classes: []string{"c"}, programmedReplicas: 1, snapshotVersion: "v1-x"},
			want:  gatewayv1alpha1.PhaseListening, programmed: gatewayv1alpha1.GatewayConfigReasonProgrammed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gc := &gatewayv1alpha1.GatewayConfig{}
			gc.Generation = 3
			setStatus(gc, tc.facts)
			if gc.Status.Phase != tc.want {
				t.Errorf("phase = %s (%s), want %s", gc.Status.Phase, gc.Status.Message, tc.want)
			}
			c := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionProgrammed)
			if c == nil || c.Reason != tc.programmed || c.ObservedGeneration != 3 {
				t.Errorf("Programmed condition = %+v, want reason %s at generation 3", c, tc.programmed)
			}
			if gc.Status.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d", gc.Status.ObservedGeneration)
			}
		})
	}
}

func TestPodProblem(t *testing.T) {
	waiting := func(reason string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + reason}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Image: "img", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}}}}
	}
	tests := map[string]struct {
		pods []corev1.Pod
		want string
	}{
		"healthy":             {pods: []corev1.Pod{waiting("ContainerCreating")}},
		"image pull back-off": {pods: []corev1.Pod{waiting("ImagePullBackOff")}, want: gatewayv1alpha1.GatewayConfigReasonImagePullFailed},
		"invalid image name":  {pods: []corev1.Pod{waiting("InvalidImageName")}, want: gatewayv1alpha1.GatewayConfigReasonImagePullFailed},
		"sysctl refused by the kubelet": {pods: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "s"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "SysctlForbidden", Message: "forbidden sysctl: net.core.somaxconn"}}},
			want: gatewayv1alpha1.GatewayConfigReasonSysctlForbidden},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := podProblem(tc.pods)
			got := ""
			if p != nil {
				got = p.reason
			}
			if got != tc.want {
				t.Errorf("podProblem = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProgressDeadlineIsFailedOnlyWhenNothingServes(t *testing.T) {
	stuck := appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2))}, Status: appsv1.DeploymentStatus{
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}}}}
	gc := &gatewayv1alpha1.GatewayConfig{}
	setStatus(gc, statusFacts{namespace: "ns", deployment: stuck.DeepCopy()})
	if gc.Status.Phase != gatewayv1alpha1.PhaseFailed {
		t.Errorf("nothing available and deadline exceeded: phase %s, want Failed", gc.Status.Phase)
	}
	serving := stuck.DeepCopy()
	serving.Status.AvailableReplicas, serving.Status.Replicas = 1, 2
	setStatus(gc, statusFacts{namespace: "ns", deployment: serving})
	if gc.Status.Phase != gatewayv1alpha1.PhaseRunning {
		t.Errorf("one pod still serves: phase %s, want Running", gc.Status.Phase)
	}
	if c := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded); c == nil || c.Reason != gatewayv1alpha1.GatewayConfigReasonProgressDeadlineExceeded {
		t.Errorf("Degraded = %+v", c)
	}
}
