// Command manager runs the Portico operator: it reconciles GatewayConfigs
// into gateway fleets and compiles Ingresses into their snapshots.
package main

import (
	"flag"
	"os"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/portico-dev/portico/controllers"
	"github.com/portico-dev/portico/controllers/render"
)

// defaultImage is stamped at build time (-ldflags -X main.defaultImage=...)
// so gateway pods default to the operator's own version.
var defaultImage = "ghcr.io/portico-dev/portico:v0.0.1"

func main() {
	var (
		metricsAddr, probeAddr, namespace, image string
		leaderElect                              bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the metrics endpoint; 0 disables it")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect one active manager among replicas")
	flag.StringVar(&namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace for instances whose GatewayConfig sets none (default: the operator's, from POD_NAMESPACE)")
	flag.StringVar(&image, "gateway-image", defaultImage, "gatewaypod image for instances whose GatewayConfig sets none")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")
	if namespace == "" {
		namespace = "portico-system"
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 controllers.NewScheme(),
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "portico-operator.portico.dev",
		// Survive an API server outage without a restart; hand over at
		// once on a clean stop (main exits right after Start returns).
		LeaseDuration:                 ptr.To(controllers.DefaultLeaseDuration),
		RenewDeadline:                 ptr.To(controllers.DefaultRenewDeadline),
		RetryPeriod:                   ptr.To(controllers.DefaultRetryPeriod),
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}
	if err := controllers.Setup(mgr, render.Params{Namespace: namespace, Image: image}); err != nil {
		setupLog.Error(err, "Unable to set up controllers")
		os.Exit(1)
	}
	_ = mgr.AddHealthzCheck("healthz", healthz.Ping)
	_ = mgr.AddReadyzCheck("readyz", healthz.Ping)
	setupLog.Info("Starting manager", "namespace", namespace, "gatewayImage", image)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}
