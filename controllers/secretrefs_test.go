package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestIngressSecretRefs(t *testing.T) {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "i", Annotations: map[string]string{
			"portico.dev/jwt-secret":                      "jwks",
			"nginx.ingress.kubernetes.io/auth-tls-secret": "other/ca", // another namespace: never read
			"portico.dev/proxy-ssl-secret":                "team/upstream",
		}},
		Spec: networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{{SecretName: "cert"}}},
	}
	got := ingressSecretRefs(ing)
	want := []types.NamespacedName{{Namespace: "team", Name: "cert"}, {Namespace: "team", Name: "upstream"}, {Namespace: "team", Name: "jwks"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
