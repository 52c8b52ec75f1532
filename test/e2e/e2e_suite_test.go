// Package e2e runs the whole system: a real kube-apiserver and etcd, the
// kube-controller-manager, kube-scheduler and kwok (a fake kubelet) so that
// Deployments get Running Pods with pod IPs, the Portico manager in-process,
// and one real gatewaypod process per gateway Pod, started with exactly the
// command, args and env the operator wrote into the Deployment.
//
// The suite re-executes itself inside a private network namespace (see
// minicluster.EnterPrivateNetwork): the API server refuses loopback
// addresses in EndpointSlices, so fake pods and backends use addresses in
// 10.244.0.0/16, which are local there and nowhere else.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/portico-dev/portico/controllers"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/internal/minicluster"
)

const (
	podRange = "10.244.0.0/16"
	nodeCIDR = "10.244.1.0/24"
	// envGatewaypod carries the gatewaypod binary built before entering the
	// private network namespace (which has no route to the module proxy).
	envGatewaypod = "PORTICO_E2E_GATEWAYPOD"
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cluster   *minicluster.Cluster
	k8sClient client.Client
	pods      *minicluster.PodRunner
	workDir   string
)

func TestMain(m *testing.M) {
	if os.Getenv(envGatewaypod) == "" {
		bin, err := buildGatewaypod()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building gatewaypod:", err)
			os.Exit(1)
		}
		os.Setenv(envGatewaypod, bin)
	}
	inChild, code, err := minicluster.EnterPrivateNetwork(podRange)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot enter a private network namespace:", err)
		os.Exit(1)
	}
	if !inChild {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// buildGatewaypod builds the proxy into a temporary directory, or uses
// GATEWAYPOD_BIN when `make` already built it.
func buildGatewaypod() (string, error) {
	if p := os.Getenv("GATEWAYPOD_BIN"); p != "" {
		if !filepath.IsAbs(p) { // relative to the repository root, like make's paths
			p = filepath.Join("..", "..", p)
		}
		return filepath.Abs(p)
	}
	dir, err := os.MkdirTemp("", "portico-e2e-bin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "gatewaypod")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/gatewaypod")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return out, cmd.Run()
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Portico end-to-end suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "set KUBEBUILDER_ASSETS (make k8s-assets builds ./bin/k8s)")

	var err error
	workDir, err = os.MkdirTemp("", "portico-e2e-")
	Expect(err).NotTo(HaveOccurred())
	By("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
	start := time.Now()
	cluster, err = minicluster.Start(ctx, minicluster.Options{
		AssetsDir:         assets,
		CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")},
		Workloads:         true,
		PodCIDR:           nodeCIDR,
		WorkDir:           workDir,
	})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("mini-cluster up in %s; logs in %s\n", time.Since(start).Round(time.Millisecond), workDir)

	k8sClient, err = client.New(cluster.Config, client.Options{Scheme: controllers.NewScheme()})
	Expect(err).NotTo(HaveOccurred())

	By("starting the Portico manager in-process")
	manager = startOperator(nil)

	// The operator's namespace exists before any spec, whatever their order.
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})).To(Succeed())

	By("running a gatewaypod process for every gateway Pod, as a kubelet would")
	pods, err = cluster.RunPods(ctx, minicluster.PodRunnerOptions{
		Selector: labels.SelectorFromSet(labels.Set{render.LabelName: render.NameGateway}),
		Binaries: map[string]string{render.GatewayCommand: os.Getenv(envGatewaypod)},
		LogDir:   filepath.Join(workDir, "pods"),
	})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if pods != nil {
		pods.Stop()
	}
	if manager != nil {
		Expect(manager.stop()).To(Succeed())
	}
	cancel()
	if cluster != nil {
		Expect(cluster.Stop()).To(Succeed())
	}
	if !CurrentSpecReport().Failed() && os.Getenv("PORTICO_E2E_KEEP") == "" {
		_ = os.RemoveAll(workDir)
	}
})
