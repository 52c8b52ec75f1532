// Package kubetest starts a real kube-apiserver and etcd (envtest) for a
// test package, so tests that touch the Kubernetes API never use fakes.
// The binaries come from `make k8s-assets` through KUBEBUILDER_ASSETS.
package kubetest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// API is a running control plane.
type API struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a clientset for Config.
	Client *kubernetes.Clientset
}

// Main starts the control plane, fills api, calls ready (if not nil) so the
// package can keep its own shortcuts, runs m and stops the control plane;
// TestMain exits with its result. A missing KUBEBUILDER_ASSETS fails the
// package (never skips).
func Main(m *testing.M, api *API, ready func()) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: these tests need a real kube-apiserver and etcd. "+
			"Run `make k8s-assets`, then KUBEBUILDER_ASSETS=$PWD/bin/k8s go test ... (make test sets it).")
		return 1
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest (KUBEBUILDER_ASSETS=%s): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	api.Config = cfg
	if api.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "building clientset: %v\n", err)
		return 1
	}
	if ready != nil {
		ready()
	}
	return m.Run()
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace with a unique name derived from t and
// deletes it when t ends.
func (api *API) Namespace(t *testing.T) string {
	t.Helper()
	prefix := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	ns, err := api.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Without a namespace controller it stays Terminating; that is fine.
		_ = api.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}
