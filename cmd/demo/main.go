// Command demo runs the whole system on one machine with no cluster: an
// embedded control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok), the Portico operator, an echo backend and one
// gatewaypod process started from the Deployment the operator wrote. It
// prints a curl that reaches the backend through the gateway, and runs until
// Ctrl-C, then stops everything and removes its files.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/internal/minicluster"
)

func main() {
	var assets, crds, samples, gatewaypod string
	var verbose bool
	flag.StringVar(&assets, "assets", "bin/k8s", "directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok (make k8s-assets)")
	flag.StringVar(&crds, "crds", "config/crd/bases", "CRD directory")
	flag.StringVar(&samples, "samples", "config/samples/demo", "directory of YAML to apply")
	flag.StringVar(&gatewaypod, "gatewaypod", "bin/gatewaypod", "gatewaypod binary")
	flag.BoolVar(&verbose, "v", false, "print the operator's logs")
	flag.Parse()
	if verbose {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, assets, crds, samples, gatewaypod); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(ctx context.Context, assets, crds, samples, gatewaypod string) error {
	for _, p := range []*string{&assets, &crds, &samples, &gatewaypod} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if _, err := os.Stat(gatewaypod); err != nil {
		return fmt.Errorf("gatewaypod binary: %w (run make build)", err)
	}
	// The gateway pod listens on 127.0.0.1 (HTTP, HTTPS, health) so your
	// shell can reach it.
	for _, port := range []int{podflags.DefaultHTTPPort, podflags.DefaultHTTPSPort, podflags.DefaultHealthPort} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("the demo gateway needs 127.0.0.1:%d, which is busy: %w", port, err)
		}
		ln.Close()
	}
	work, err := os.MkdirTemp("", "portico-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	say("Starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (a fake kubelet)")
	cluster, err := minicluster.Start(ctx, minicluster.Options{
		AssetsDir: assets, CRDDirectoryPaths: []string{crds}, Workloads: true, PodCIDR: "10.244.1.0/24", WorkDir: work,
	})
	if err != nil {
		return err
	}
	defer func() {
		say("Stopping the control plane")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: stopping:", err)
		}
	}()
	c, err := client.New(cluster.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return err
	}

	say("Starting the Portico operator")
	mgr, err := ctrl.NewManager(cluster.Config, ctrl.Options{
		Scheme: controllers.NewScheme(), Cache: controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, render.Params{Namespace: "portico-system", Image: "ghcr.io/portico-dev/portico:demo"}); err != nil {
		return err
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()

	say("Starting gateway pods as local processes (the command the operator writes into the Deployment)")
	runner, err := cluster.RunPods(ctx, minicluster.PodRunnerOptions{
		Selector:    labels.SelectorFromSet(labels.Set{render.LabelName: render.NameGateway}),
		Binaries:    map[string]string{render.GatewayCommand: gatewaypod},
		EnvOverride: map[string]string{podflags.EnvPodIP: "127.0.0.1"},
		LogDir:      filepath.Join(work, "pods"),
	})
	if err != nil {
		return err
	}
	defer runner.Stop()

	echo, echoPort, err := startEcho()
	if err != nil {
		return err
	}
	defer echo.Close()

	say("Applying %s", samples)
	if err := applyDir(ctx, c, samples); err != nil {
		return err
	}
	// ExternalName to localhost: the gateway reaches the echo server on the
	// loopback address, which EndpointSlices may not carry.
	if err := c.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "echo"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "http", Port: int32(echoPort)}}},
	}); err != nil {
		return err
	}

	say("Waiting for GatewayConfig demo to be Listening")
	deadline := time.Now().Add(3 * time.Minute)
	var gc gatewayv1alpha1.GatewayConfig
	for {
		if err := c.Get(ctx, types.NamespacedName{Name: "demo"}, &gc); err == nil && gc.Status.Phase == gatewayv1alpha1.PhaseListening {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GatewayConfig demo is %q after 3 minutes: %s", gc.Status.Phase, gc.Status.Message)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-mgrDone:
			return fmt.Errorf("operator stopped: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	say("GatewayConfig demo: phase %s, snapshot %s", gc.Status.Phase, gc.Status.Snapshot.Version)

	curl := fmt.Sprintf("curl -H 'Host: echo.example.com' http://127.0.0.1:%d/hello", podflags.DefaultHTTPPort)
	if body, err := probe(ctx); err != nil {
		return fmt.Errorf("the gateway did not answer: %w", err)
	} else {
		say("The gateway answered: %s", body)
	}
	fmt.Printf(`
Portico is running. Reach the echo backend through the gateway:

    %s

Look around with kubectl (built into %s):

    export KUBECONFIG=%s
    %s/kubectl get gatewayconfigs,ingressclasses,ingress -A
    %s/kubectl describe gatewayconfig demo

Press Ctrl-C to stop everything and remove the temporary files.
`, curl, assets, cluster.KubeconfigPath, assets, assets)
	select {
	case <-ctx.Done():
	case err := <-mgrDone:
		return fmt.Errorf("operator stopped: %w", err)
	}
	fmt.Println()
	return nil
}

// startEcho serves a small echo on 127.0.0.1 at a free port.
func startEcho() (*http.Server, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the echo backend: %s %s (host %s, via %s)\n", r.Method, r.URL.Path, r.Host, r.Header.Get("X-Forwarded-For"))
	})}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().(*net.TCPAddr).Port, nil
}

// probe sends the request the printed curl sends, retrying briefly.
func probe(ctx context.Context) (string, error) {
	var last error
	for i := 0; i < 40; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/hello", podflags.DefaultHTTPPort), nil)
		req.Host = "echo.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(bytes.TrimSpace(b)), nil
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return "", last
}

// applyDir creates every object in the YAML files of dir.
func applyDir(ctx context.Context, c client.Client, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, u); err != nil {
				return fmt.Errorf("create %s %s from %s: %w", u.GetKind(), u.GetName(), f, err)
			}
		}
	}
	return nil
}
