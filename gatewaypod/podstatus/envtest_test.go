package podstatus

import (
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/portico-dev/portico/internal/kubetest"
)

// The tests that touch the Kubernetes API run against a real kube-apiserver
// and etcd, started once for the package (internal/kubetest).
var (
	api     kubetest.API
	kube    *kubernetes.Clientset
	kubeCfg *rest.Config // for clients with their own transport
)

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, &api, func() {
		kube = api.Client
		kubeCfg = api.Config
	}))
}

// newNamespace creates a namespace with a unique name for t.
func newNamespace(t *testing.T) string { return api.Namespace(t) }
