package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/compile"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

func sealedOutput(mutate func(*snapshot.Snapshot)) compile.Output {
	s := &snapshot.Snapshot{Hosts: []snapshot.VirtualHost{{Host: "a.example.com", Routes: []snapshot.Route{{
		Path: "/", PathType: snapshot.PathPrefix, Backend: snapshot.Backend{Name: "a", Endpoints: []string{"10.0.0.1:80"}},
	}}}}}
	if mutate != nil {
		mutate(s)
	}
	return compile.Output{Snapshot: s, Encoded: snapshot.Encode(snapshot.Seal(s))}
}

func TestSnapshotConfigMaps(t *testing.T) {
	inst := render.NewInstance(&gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"}}, render.Params{Namespace: "ops"})
	wrongVersion := sealedOutput(nil)
	wrongVersion.Snapshot = sealedOutput(func(s *snapshot.Snapshot) { s.Hosts[0].Host = "b.example.com" }).Snapshot
	tests := map[string]struct {
		out        compile.Output
		partSize   int
		wantCMs    int
		wantReason string
		wantMsg    string
	}{
		"valid, one ConfigMap":        {out: sealedOutput(nil), wantCMs: 1},
		"valid, split":                {out: sealedOutput(nil), partSize: 64, wantCMs: 3},
		"fails the pods' validation":  {out: sealedOutput(func(s *snapshot.Snapshot) { s.Hosts[0].Routes[0].Path = "x" }), wantReason: gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid, wantMsg: `"x"`},
		"does not decode":             {out: compile.Output{Snapshot: &snapshot.Snapshot{Version: "v1-x"}, Encoded: []byte("{")}, wantReason: gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid},
		"encoded is another snapshot": {out: wrongVersion, wantReason: gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid, wantMsg: "decodes to version"},
		"needs too many ConfigMaps":   {out: sealedOutput(nil), partSize: 8, wantReason: gatewayv1alpha1.GatewayConfigReasonSnapshotTooLarge, wantMsg: "more than the maximum of 8"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cms, p := snapshotConfigMaps(inst, tc.out, tc.partSize)
			if tc.wantReason == "" {
				if p != nil || len(cms) != tc.wantCMs {
					t.Fatalf("got %d ConfigMaps, problem %+v; want %d", len(cms), p, tc.wantCMs)
				}
				return
			}
			if p == nil || cms != nil || p.reason != tc.wantReason || !strings.Contains(p.message, tc.wantMsg) {
				t.Fatalf("got %d ConfigMaps, problem %+v; want none and %s with %q", len(cms), p, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

func TestUnwantedParts(t *testing.T) {
	inst := render.NewInstance(&gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"}}, render.Params{Namespace: "ops"})
	all := inst.PartConfigMaps()
	for n, want := range map[int][]string{1: all, 3: all[2:], snapshot.MaxParts: {}} {
		if diff := cmp.Diff(want, unwantedParts(inst, n)); diff != "" {
			t.Errorf("unwantedParts(%d) (-want +got):\n%s", n, diff)
		}
	}
}

// TestSnapshotRefusalStatus: a refused snapshot makes the instance Degraded
// with the refusal, ahead of pod problems, while pods serving the last good
// snapshot keep it Programmed and Listening.
func TestSnapshotRefusalStatus(t *testing.T) {
	available := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}}
	refusal := &problem{gatewayv1alpha1.GatewayConfigReasonSnapshotInvalid, "snapshot v1-new fails validation"}
	gc := &gatewayv1alpha1.GatewayConfig{}
	setStatus(gc, statusFacts{namespace: "ns", deployment: available, classes: []string{"c"}, programmedReplicas: 1,
		snapshotVersion: "v1-good", snapshotProblem: refusal,
		podProblem: &problem{gatewayv1alpha1.GatewayConfigReasonImagePullFailed, "pod x cannot pull"}})
	d := meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
	if d == nil || d.Status != metav1.ConditionTrue || d.Reason != refusal.reason || d.Message != refusal.message {
		t.Errorf("Degraded = %+v", d)
	}
	if gc.Status.Phase != gatewayv1alpha1.PhaseListening || gc.Status.Snapshot.Version != "v1-good" {
		t.Errorf("phase %s, snapshot %s; want Listening on the last good one", gc.Status.Phase, gc.Status.Snapshot.Version)
	}
	if !newRefusal(&gatewayv1alpha1.GatewayConfig{}, refusal) || newRefusal(gc, refusal) {
		t.Error("newRefusal: want true before the condition says it, false after")
	}
}
