// Package install tests what a cluster administrator installs and runs: the
// kustomize tree (config/default, config/samples, config/prometheus) against
// a real API server, the binaries built the way the Dockerfile builds them,
// and the Grafana dashboard against the metrics the code exports.
package install

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/hack/bundlegen"
)

const (
	root       = "../.."
	fieldOwner = "portico-install-test"
)

// startAPIServer runs etcd and kube-apiserver from KUBEBUILDER_ASSETS (as
// `make test` sets it), else from ./bin/k8s.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	env := &envtest.Environment{}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		dir, _ := filepath.Abs(filepath.Join(root, "bin", "k8s"))
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
			t.Fatal("no control plane: set KUBEBUILDER_ASSETS or run `make k8s-assets` (make test does both)")
		}
		env.BinaryAssetsDirectory = dir
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start API server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop API server: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// TestDefaultIsComplete checks config/default holds a whole install.
func TestDefaultIsComplete(t *testing.T) {
	objs, err := bundlegen.Kustomize(root, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
		"ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} {
		if len(find(objs, kind)) == 0 {
			t.Errorf("config/default has no %s", kind)
		}
	}
	deps := find(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, got %d", len(deps))
	}
	d := convert[appsv1.Deployment](t, deps[0])
	ns := find(objs, "Namespace")[0].GetName()
	for _, u := range objs {
		if u.GetNamespace() != "" && u.GetNamespace() != ns {
			t.Errorf("%s %s is in namespace %s, not %s", u.GetKind(), u.GetName(), u.GetNamespace(), ns)
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("manager args %v lack --leader-elect", c.Args)
	}
	gw := ""
	for _, e := range c.Env {
		if e.Name == "RELATED_IMAGE_GATEWAY" {
			gw = e.Value
		}
	}
	if gw != c.Image || !slices.Contains(c.Args, "--gateway-image=$(RELATED_IMAGE_GATEWAY)") {
		t.Errorf("gateway image %q, manager image %q, args %v: gateway pods must default to the operator's image", gw, c.Image, c.Args)
	}

	// The metrics Service selects the manager pods and reaches its metrics port.
	var metricsSvc *corev1.Service
	for _, u := range find(objs, "Service") {
		if strings.Contains(u.GetName(), "metrics") {
			metricsSvc = convert[corev1.Service](t, u)
		}
	}
	if metricsSvc == nil {
		t.Fatal("config/default has no metrics Service")
	}
	if !labels.SelectorFromSet(metricsSvc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("metrics Service selector %v does not match the manager pods %v", metricsSvc.Spec.Selector, d.Spec.Template.Labels)
	}
	port := metricsSvc.Spec.Ports[0].TargetPort
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == port.StrVal || p.ContainerPort == port.IntVal
	}) || !slices.Contains(c.Args, "--metrics-bind-address=:"+portNumber(c.Ports, port.StrVal)) {
		t.Errorf("metrics Service targets %v; manager ports %v, args %v", port.String(), c.Ports, c.Args)
	}
}

func portNumber(ports []corev1.ContainerPort, name string) string {
	for _, p := range ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	return ""
}

// TestApply applies config/default and config/samples to a real API server:
// the Namespace and CRD for real, every other object with server-side apply
// in dry-run mode, so each is validated (schema, CEL rules, defaults) for the
// API version served.
func TestApply(t *testing.T) {
	objs, err := bundlegen.Kustomize(root, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := bundlegen.Kustomize(root, "samples", "")
	if err != nil {
		t.Fatal(err)
	}
	c := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	apply := func(u *unstructured.Unstructured, dryRun bool) {
		t.Helper()
		opts := []client.ApplyOption{client.FieldOwner(fieldOwner), client.ForceOwnership}
		if dryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...); err != nil {
			t.Errorf("apply %s %s (dry run %v): %v", u.GetKind(), u.GetName(), dryRun, err)
		}
	}
	for _, kind := range []string{"Namespace", "CustomResourceDefinition"} {
		for _, u := range find(objs, kind) {
			apply(u, false)
		}
	}
	for _, u := range find(objs, "CustomResourceDefinition") {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, types.NamespacedName{Name: u.GetName()}, &crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", u.GetName(), err)
		}
	}
	// The client's RESTMapper discovers lazily; the new CRD is found on demand.
	for _, u := range objs {
		if k := u.GetKind(); k != "Namespace" && k != "CustomResourceDefinition" {
			apply(u, true)
		}
	}
	kinds := map[string]bool{}
	for _, u := range samples {
		apply(u, true)
		kinds[u.GetKind()] = true
	}
	if !kinds["GatewayConfig"] || !kinds["IngressClass"] {
		t.Errorf("config/samples kinds %v: want GatewayConfigs and IngressClasses", kinds)
	}
}

// TestPrometheus checks config/prometheus builds and its monitors select what
// the operator and the gateway Deployments really label and expose.
func TestPrometheus(t *testing.T) {
	def, err := bundlegen.Kustomize(root, "default", "")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := bundlegen.Kustomize(root, "prometheus", "")
	if err != nil {
		t.Fatal(err)
	}
	sms, pms := find(objs, "ServiceMonitor"), find(objs, "PodMonitor")
	if len(sms) != 1 || len(pms) != 1 {
		t.Fatalf("want one ServiceMonitor and one PodMonitor, got %d and %d", len(sms), len(pms))
	}
	var svc *unstructured.Unstructured
	for _, u := range find(def, "Service") {
		svc = u
	}
	match, _, _ := unstructured.NestedStringMap(sms[0].Object, "spec", "selector", "matchLabels")
	if !labels.SelectorFromSet(match).Matches(labels.Set(svc.GetLabels())) {
		t.Errorf("ServiceMonitor selector %v does not match the metrics Service labels %v", match, svc.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(sms[0].Object, "spec", "endpoints")
	svcPorts, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != svcPorts[0].(map[string]any)["name"] {
		t.Errorf("ServiceMonitor endpoints %v do not name the Service port %v", eps, svcPorts)
	}

	// A gateway Deployment as the operator renders it.
	gc := &gatewayv1alpha1.GatewayConfig{}
	gc.Name = "public"
	params := render.Params{Namespace: "portico-system", Image: "example/portico:v0"}
	dep := render.NewInstance(gc, params).Deployment(params)
	match, _, _ = unstructured.NestedStringMap(pms[0].Object, "spec", "selector", "matchLabels")
	if !labels.SelectorFromSet(match).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("PodMonitor selector %v does not match gateway pods %v", match, dep.Spec.Template.Labels)
	}
	pes, _, _ := unstructured.NestedSlice(pms[0].Object, "spec", "podMetricsEndpoints")
	var names []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			names = append(names, p.Name)
		}
	}
	if len(pes) != 1 || !slices.Contains(names, pes[0].(map[string]any)["port"].(string)) {
		t.Errorf("PodMonitor endpoints %v do not name a gateway container port %v", pes, names)
	}
}
