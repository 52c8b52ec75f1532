package controllers

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

func TestRefusingPods(t *testing.T) {
	refused := func(name, value string, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{podflags.AnnotationSnapshotVersion: "v1-a"}}}
		if value != "" {
			p.Annotations[podflags.AnnotationSnapshotRefused] = value
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	bad := podflags.SnapshotRefusal{Reason: "Invalid", Message: "unexpected end of JSON input"}.Encode()
	forged := podflags.SnapshotRefusal{Version: "v1-forged", Reason: "Invalid", Message: "version mismatch"}.Encode()
	tests := map[string]struct {
		pods    []corev1.Pod
		want    int32
		wantMsg []string
	}{
		"none":                   {pods: []corev1.Pod{refused("a", "", false)}},
		"terminating is ignored": {pods: []corev1.Pod{refused("a", bad, true)}},
		"one": {pods: []corev1.Pod{refused("a", "", false), refused("b", bad, false)}, want: 1,
			wantMsg: []string{"1 gateway pod refused", "pod b refused the payload (Invalid): unexpected end of JSON input"}},
		"two, the first by name is named": {pods: []corev1.Pod{refused("a", forged, false), refused("b", bad, false)}, want: 2,
			wantMsg: []string{"2 gateway pods refused", "pod a refused snapshot v1-forged (Invalid): version mismatch"}},
		"unreadable annotation": {pods: []corev1.Pod{refused("a", "{", false)}, want: 1,
			wantMsg: []string{"pod a: unreadable " + podflags.AnnotationSnapshotRefused}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, p := refusingPods(tc.pods)
			if n != tc.want || (p == nil) != (tc.want == 0) {
				t.Fatalf("refusingPods = %d, %+v; want %d", n, p, tc.want)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(p.message, m) || p.reason != gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods {
					t.Errorf("problem %+v, want reason %s and %q in the message", p, gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods, m)
				}
			}
		})
	}
}

var _ = Describe("Pods refusing a snapshot", func() {
	const name = "refusals"
	params := render.Params{Namespace: "portico-system", Image: "example.com/portico:test"}

	It("makes the instance Degraded with one Warning Event per change, and clears when they serve again", func() {
		rec := events.NewFakeRecorder(20)
		r := &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: rec, Params: params}
		reconcileOnce := func() *gatewayv1alpha1.GatewayConfig {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
			Expect(err).NotTo(HaveOccurred())
			gc := &gatewayv1alpha1.GatewayConfig{}
			Expect(k8sClient.Get(ctx, types.NamespacedName{Name: name}, gc)).To(Succeed())
			return gc
		}
		refusalEvents := func() []string {
			var out []string
			for {
				select {
				case e := <-rec.Events:
					if strings.Contains(e, EventReasonSnapshotRefusedByPods) {
						out = append(out, e)
					}
				default:
					return out
				}
			}
		}

		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: params.Namespace}}))).To(Succeed())
		Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		gc := reconcileOnce()
		version := gc.Status.Snapshot.Version
		Expect(version).NotTo(BeEmpty())
		inst := render.NewInstance(gc, params)
		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: inst.Name}, dep)).To(Succeed())
		dep.Status = appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
		Expect(k8sClient.Status().Update(ctx, dep)).To(Succeed())

		pods := make([]*corev1.Pod, 2)
		for i := range pods {
			pods[i] = &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: fmt.Sprintf("portico-%s-%d", name, i), Labels: inst.Labels(),
					Annotations: map[string]string{podflags.AnnotationSnapshotVersion: version}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gatewaypod", Image: "x"}}},
			}
			Expect(k8sClient.Create(ctx, pods[i])).To(Succeed())
			pods[i].Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			Expect(k8sClient.Status().Update(ctx, pods[i])).To(Succeed())
		}
		setRefusal := func(p *corev1.Pod, value string) {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			if value == "" {
				delete(p.Annotations, podflags.AnnotationSnapshotRefused)
			} else {
				p.Annotations[podflags.AnnotationSnapshotRefused] = value
			}
			Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}
		degraded := func(gc *gatewayv1alpha1.GatewayConfig) *metav1.Condition {
			return meta.FindStatusCondition(gc.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionDegraded)
		}

		gc = reconcileOnce()
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseRunning), gc.Status.Message) // no IngressClass binds it
		Expect(degraded(gc).Status).To(Equal(metav1.ConditionFalse))
		Expect(refusalEvents()).To(BeEmpty())

		By("one pod refuses a truncated payload")
		setRefusal(pods[1], podflags.SnapshotRefusal{Reason: "Invalid", Message: "unexpected end of JSON input"}.Encode())
		gc = reconcileOnce()
		d := degraded(gc)
		Expect(d.Status).To(Equal(metav1.ConditionTrue))
		Expect(d.Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonSnapshotRefusedByPods))
		Expect(d.Message).To(ContainSubstring("1 gateway pod refused"))
		Expect(d.Message).To(ContainSubstring("pod portico-refusals-1 refused the payload (Invalid): unexpected end of JSON input"))
		Expect(gc.Status.Snapshot.RefusingReplicas).To(Equal(int32(1)))
		Expect(gc.Status.Snapshot.ServingReplicas).To(Equal(int32(2)), "the last good snapshot still serves")
		Expect(gc.Status.Phase).To(Equal(gatewayv1alpha1.PhaseRunning), "pods still serve: not Failed")
		Expect(refusalEvents()).To(HaveLen(1))

		By("a second reconcile: no new Event, no status write")
		rv := gc.ResourceVersion
		gc = reconcileOnce()
		Expect(gc.ResourceVersion).To(Equal(rv))
		Expect(refusalEvents()).To(BeEmpty())

		By("both pods refuse: the count changes, one more Event")
		setRefusal(pods[0], podflags.SnapshotRefusal{Reason: "Invalid", Message: "unexpected end of JSON input"}.Encode())
		gc = reconcileOnce()
		Expect(degraded(gc).Message).To(ContainSubstring("2 gateway pods refused"))
		Expect(gc.Status.Snapshot.RefusingReplicas).To(Equal(int32(2)))
		Expect(refusalEvents()).To(HaveLen(1))

		By("the pods receive the good payload again and clear their annotation")
		setRefusal(pods[0], "")
		setRefusal(pods[1], "")
		gc = reconcileOnce()
		Expect(degraded(gc).Status).To(Equal(metav1.ConditionFalse))
		Expect(degraded(gc).Reason).To(Equal(gatewayv1alpha1.GatewayConfigReasonAsExpected))
		Expect(gc.Status.Snapshot.RefusingReplicas).To(BeZero())
		Expect(refusalEvents()).To(BeEmpty())
	})
})
