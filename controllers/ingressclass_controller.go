package controllers

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
)

// Event reasons on IngressClasses.
const (
	EventReasonGatewayConfigNotFound = "GatewayConfigNotFound"
	EventReasonInvalidParameters     = "InvalidParameters"
	EventReasonBound                 = "Bound"
)

// IngressClassReconciler makes IngressClass problems visible: a Portico
// class whose spec.parameters are missing, of the wrong kind, or name a
// GatewayConfig that does not exist gets a Warning Event, once per change.
// It writes nothing else: IngressClass has no status.
type IngressClassReconciler struct {
	client.Client
	Recorder events.EventRecorder

	reported sync.Map // class name -> last reported problem ("" when bound)
}

// Reconcile checks one IngressClass.
func (r *IngressClassReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	class := &networkingv1.IngressClass{}
	if err := r.Get(ctx, req.NamespacedName, class); err != nil {
		if apierrors.IsNotFound(err) {
			r.reported.Delete(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if class.Spec.Controller != gatewayv1alpha1.ControllerName {
		return ctrl.Result{}, nil
	}
	reason, msg, err := r.check(ctx, class)
	if err != nil {
		return ctrl.Result{}, err
	}
	key := reason + "/" + msg
	if prev, ok := r.reported.Load(class.Name); ok && prev == key {
		return ctrl.Result{}, nil
	}
	r.reported.Store(class.Name, key)
	typ := corev1.EventTypeWarning
	if reason == EventReasonBound {
		typ = corev1.EventTypeNormal
	}
	r.Recorder.Eventf(class, nil, typ, reason, "Bind", "%s", msg)
	return ctrl.Result{}, nil
}

func (r *IngressClassReconciler) check(ctx context.Context, class *networkingv1.IngressClass) (reason, msg string, _ error) {
	p := class.Spec.Parameters
	if p == nil {
		return EventReasonInvalidParameters, "spec.parameters is required: it names the GatewayConfig (apiGroup gateway.portico.dev, kind GatewayConfig) that serves this class", nil
	}
	if p.APIGroup == nil || *p.APIGroup != gatewayv1alpha1.GroupVersion.Group || p.Kind != "GatewayConfig" {
		return EventReasonInvalidParameters, fmt.Sprintf("spec.parameters must reference apiGroup %s, kind GatewayConfig", gatewayv1alpha1.GroupVersion.Group), nil
	}
	if p.Scope != nil && *p.Scope != networkingv1.IngressClassParametersReferenceScopeCluster {
		return EventReasonInvalidParameters, "spec.parameters.scope must be Cluster: GatewayConfig is cluster-scoped", nil
	}
	gc := &gatewayv1alpha1.GatewayConfig{}
	if err := r.Get(ctx, types.NamespacedName{Name: p.Name}, gc); err != nil {
		if apierrors.IsNotFound(err) {
			return EventReasonGatewayConfigNotFound, fmt.Sprintf("GatewayConfig %q does not exist; Ingresses of this class are not served until it does", p.Name), nil
		}
		return "", "", err
	}
	return EventReasonBound, fmt.Sprintf("bound to GatewayConfig %q", p.Name), nil
}

// SetupWithManager watches IngressClasses, and GatewayConfigs so that a
// class is re-checked when the GatewayConfig it names comes or goes.
func (r *IngressClassReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&networkingv1.IngressClass{}).
		Watches(&gatewayv1alpha1.GatewayConfig{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list networkingv1.IngressClassList
			if err := r.List(ctx, &list); err != nil {
				return nil
			}
			var reqs []reconcile.Request
			for _, c := range list.Items {
				if c.Spec.Parameters != nil && c.Spec.Parameters.Name == o.GetName() {
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
				}
			}
			return reqs
		})).
		Named("ingressclass").
		Complete(r)
}
