package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/annotations"
	"github.com/portico-dev/portico/controllers/compile"
)

// indexIngressBackendService indexes Ingresses by each "namespace/name" of
// the Services they route to, so a Service or EndpointSlice change wakes
// only the instances that use it: endpoint churn in one team's Service does
// not recompile every instance.
const indexIngressBackendService = "portico.dev/backend-service"

// indexIngressTLSSecret indexes Ingresses by "namespace/name" of the
// Secrets they refer to (spec.tls and Secret-valued annotations), so a
// certificate rotation wakes only its instances.
const indexIngressTLSSecret = "portico.dev/tls-secret"

func addIndexers(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &networkingv1.Ingress{}, indexIngressTLSSecret, func(o client.Object) []string {
		var out []string
		for _, ref := range ingressSecretRefs(o.(*networkingv1.Ingress)) {
			out = append(out, ref.String())
		}
		return out
	}); err != nil {
		return err
	}
	return mgr.GetFieldIndexer().IndexField(ctx, &networkingv1.Ingress{}, indexIngressBackendService, func(o client.Object) []string {
		ing := o.(*networkingv1.Ingress)
		var out []string
		add := func(b *networkingv1.IngressBackend) {
			if b != nil && b.Service != nil {
				out = append(out, ing.Namespace+"/"+b.Service.Name)
			}
		}
		add(ing.Spec.DefaultBackend)
		if svc := annotations.DefaultBackendService(ing.Annotations); svc != "" {
			out = append(out, ing.Namespace+"/"+svc) // the default-backend annotation
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for i := range r.HTTP.Paths {
				add(&r.HTTP.Paths[i].Backend)
			}
		}
		return out
	})
}

// instancesForClass maps an IngressClass to the GatewayConfig it names.
func instancesForClass(_ context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*networkingv1.IngressClass)
	if !ok || c.Spec.Controller != gatewayv1alpha1.ControllerName || c.Spec.Parameters == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: c.Spec.Parameters.Name}}}
}

// instancesForIngresses maps Ingresses to the instances of their classes
// (the default class for class-less ones).
func (r *GatewayConfigReconciler) instancesForIngresses(ctx context.Context, ings []networkingv1.Ingress) []reconcile.Request {
	if len(ings) == 0 {
		return nil
	}
	var classes networkingv1.IngressClassList
	if err := r.List(ctx, &classes); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list IngressClasses")
		return nil
	}
	seen := map[string]bool{}
	var reqs []reconcile.Request
	for i := range ings {
		want := compile.ClassOf(&ings[i])
		for j := range classes.Items {
			c := &classes.Items[j]
			isDefault := c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true"
			if c.Name != want && !(want == "" && isDefault) {
				continue
			}
			for _, req := range instancesForClass(ctx, c) {
				if !seen[req.Name] {
					seen[req.Name] = true
					reqs = append(reqs, req)
				}
			}
		}
	}
	return reqs
}

func (r *GatewayConfigReconciler) instancesForIngress(ctx context.Context, o client.Object) []reconcile.Request {
	ing, ok := o.(*networkingv1.Ingress)
	if !ok {
		return nil
	}
	return r.instancesForIngresses(ctx, []networkingv1.Ingress{*ing})
}

// instancesForService maps a Service, or an EndpointSlice by its Service
// label, to the instances whose Ingresses route to it.
func (r *GatewayConfigReconciler) instancesForService(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetName()
	if _, ok := o.(*discoveryv1.EndpointSlice); ok {
		name = o.GetLabels()[discoveryv1.LabelServiceName]
	} else if _, ok := o.(*corev1.Service); !ok {
		return nil
	}
	if name == "" {
		return nil
	}
	var ings networkingv1.IngressList
	if err := r.List(ctx, &ings, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{indexIngressBackendService: o.GetNamespace() + "/" + name}); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list Ingresses by backend Service")
		return nil
	}
	return r.instancesForIngresses(ctx, ings.Items)
}

// instancesForSecret maps a Secret (metadata only) to the instances whose
// Ingresses name it in spec.tls.
func (r *GatewayConfigReconciler) instancesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var ings networkingv1.IngressList
	if err := r.List(ctx, &ings, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{indexIngressTLSSecret: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list Ingresses by TLS Secret")
		return nil
	}
	reqs := r.instancesForIngresses(ctx, ings.Items)
	// An instance's own default certificate.
	var gcs gatewayv1alpha1.GatewayConfigList
	if err := r.List(ctx, &gcs); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list GatewayConfigs")
		return reqs
	}
	for _, gc := range gcs.Items {
		if d := gc.Spec.Defaults; d != nil && d.TLSCertificate != nil &&
			d.TLSCertificate.Namespace == o.GetNamespace() && d.TLSCertificate.Name == o.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: gc.Name}})
		}
	}
	return reqs
}
