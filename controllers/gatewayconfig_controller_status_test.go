package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"

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
