package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
)

// The API server's own authorizer decides, through SubjectAccessReviews,
// what a gateway pod's ServiceAccount may do: exactly its own snapshot
// ConfigMaps (head and the fixed list of parts) and TLS Secret, and its pods' annotations; nothing of the
// neighbouring instance.
var _ = Describe("Gateway pod RBAC", func() {
	It("grants each instance's pods their own snapshot and Secret only", func() {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenancy"}}))).To(Succeed())
		r := &GatewayConfigReconciler{Client: k8sClient, Scheme: k8sClient.Scheme(), Recorder: recorder,
			Params: render.Params{Namespace: "tenancy", Image: "x"}}
		for _, name := range []string{"north", "east"} {
			Expect(k8sClient.Create(ctx, &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
			Expect(err).NotTo(HaveOccurred())
		}
		// canIn asks about namespace ns ("" is cluster-wide).
		canIn := func(ns, sa, verb, resource, name string) bool {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:tenancy:" + sa,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:tenancy", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: resource, Name: name},
			}}
			Expect(k8sClient.Create(ctx, sar)).To(Succeed())
			return sar.Status.Allowed
		}
		can := func(sa, verb, resource, name string) bool { return canIn("tenancy", sa, verb, resource, name) }
		type check struct {
			verb, resource, name string
			want                 bool
		}
		for _, c := range []check{
			{"get", "configmaps", "portico-north-snapshot", true},
			{"watch", "configmaps", "portico-north-snapshot", true},
			{"get", "configmaps", "portico-north-snapshot-1", true},
			{"get", "configmaps", "portico-north-snapshot-7", true},
			{"get", "configmaps", "portico-north-snapshot-8", false}, // beyond snapshot.MaxParts
			{"get", "configmaps", "portico-east-snapshot-1", false},
			{"update", "configmaps", "portico-north-snapshot-1", false},
			{"get", "secrets", "portico-north-tls", true},
			{"get", "configmaps", "portico-east-snapshot", false},
			{"get", "secrets", "portico-east-tls", false},
			{"list", "secrets", "", false},
			{"update", "configmaps", "portico-north-snapshot", false},
			{"patch", "pods", "portico-north-abc", true},
			{"delete", "pods", "portico-north-abc", false},
			{"create", "configmaps", "", false},
		} {
			Expect(can("portico-north", c.verb, c.resource, c.name)).To(Equal(c.want), "%s %s %q", c.verb, c.resource, c.name)
		}
		// Nothing outside its own two objects: not a same-named Secret in
		// another namespace, not other ConfigMaps, no lists.
		for _, c := range []struct{ ns, verb, resource, name string }{
			{"default", "get", "secrets", "portico-north-tls"},
			{"default", "get", "configmaps", "portico-north-snapshot"},
			{"", "list", "secrets", ""},
			{"", "list", "configmaps", ""},
			{"tenancy", "list", "configmaps", ""},
			{"tenancy", "get", "configmaps", "kube-root-ca.crt"},
			{"tenancy", "watch", "secrets", ""},
		} {
			Expect(canIn(c.ns, "portico-north", c.verb, c.resource, c.name)).To(BeFalse(), "%s %s %q in %q", c.verb, c.resource, c.name, c.ns)
		}
		Expect(can("portico-east", "get", "configmaps", "portico-east-snapshot")).To(BeTrue())
		Expect(can("portico-east", "get", "configmaps", "portico-north-snapshot")).To(BeFalse())
	})
})
