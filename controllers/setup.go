package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
)

// DefaultMinPublishInterval bounds snapshot writes to two per second per
// instance while keeping changes live within about half a second.
const DefaultMinPublishInterval = 500 * time.Millisecond

// ControllerName is the events.k8s.io reporting controller.
const ControllerName = "portico-operator"

// NewScheme knows the built-in types and ours.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := gatewayv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// CacheOptions keeps only the operator's own Pods and ConfigMaps in memory:
// a cluster's other Pods and ConfigMaps are many and none of our business.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: labels.SelectorFromSet(labels.Set{render.LabelName: render.NameGateway})},
		&corev1.ConfigMap{}: {Label: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: "portico"})},
	}}
}

// Setup registers every Portico controller with mgr. main, the demo and the
// tests all wire the operator through here.
func Setup(mgr ctrl.Manager, p render.Params) error {
	rec := mgr.GetEventRecorder(ControllerName)
	if err := (&GatewayConfigReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: rec, Params: p,
		MinPublishInterval: DefaultMinPublishInterval,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&IngressClassReconciler{Client: mgr.GetClient(), Recorder: rec}).SetupWithManager(mgr)
}
