// Package podflags is the single source of truth for gatewaypod's command
// line: controllers/render writes a Deployment with Flags.Args, and gatewaypod
// parses the same flags with Parse, so an end-to-end test can run exactly the
// command the operator wrote.
package podflags

import (
	"errors"
	"flag"
	"fmt"
)

// Environment variables the Deployment sets through the downward API.
const (
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvPodIP        = "POD_IP"
)

// Defaults for the ports and the mounted snapshot.
const (
	DefaultHTTPPort     = 8080
	DefaultHealthPort   = 8081
	DefaultSnapshotDir  = "/etc/portico/snapshot"
	DefaultSnapshotFile = DefaultSnapshotDir + "/snapshot.json"
)

// Flags configures one gatewaypod process.
type Flags struct {
	// HTTPAddress is where the proxy listens for client traffic. The
	// Deployment passes "$(POD_IP):8080" so several fake pods can share one
	// network namespace in tests; the kubelet expands $(POD_IP).
	HTTPAddress string
	// HealthAddress serves /healthz, /readyz and /metrics.
	HealthAddress string
	// SnapshotNamespace and SnapshotConfigMap name the ConfigMap watched
	// through the API; a change is live in about a second.
	SnapshotNamespace string
	SnapshotConfigMap string
	// SnapshotFile is the mounted copy of the ConfigMap, read once at boot so
	// the pod can serve before the API answers.
	SnapshotFile string
	// Instance is the GatewayConfig name, used in logs and metrics labels.
	Instance string
}

// Args renders f as the container args the Deployment carries.
func (f Flags) Args() []string {
	return []string{
		"--http-address=" + f.HTTPAddress,
		"--health-address=" + f.HealthAddress,
		"--snapshot-namespace=" + f.SnapshotNamespace,
		"--snapshot-configmap=" + f.SnapshotConfigMap,
		"--snapshot-file=" + f.SnapshotFile,
		"--instance=" + f.Instance,
	}
}

// Parse reads the args written by Args (and nothing else).
func Parse(args []string) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet("gatewaypod", flag.ContinueOnError)
	fs.StringVar(&f.HTTPAddress, "http-address", fmt.Sprintf(":%d", DefaultHTTPPort), "address for client traffic")
	fs.StringVar(&f.HealthAddress, "health-address", fmt.Sprintf(":%d", DefaultHealthPort), "address for /healthz, /readyz and /metrics")
	fs.StringVar(&f.SnapshotNamespace, "snapshot-namespace", "", "namespace of the snapshot ConfigMap")
	fs.StringVar(&f.SnapshotConfigMap, "snapshot-configmap", "", "name of the snapshot ConfigMap to watch through the API")
	fs.StringVar(&f.SnapshotFile, "snapshot-file", DefaultSnapshotFile, "mounted snapshot used at boot until the API answers")
	fs.StringVar(&f.Instance, "instance", "", "GatewayConfig name, for logs and metrics")
	if err := fs.Parse(args); err != nil {
		return Flags{}, err
	}
	if fs.NArg() > 0 {
		return Flags{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var errs []error
	if f.SnapshotConfigMap != "" && f.SnapshotNamespace == "" {
		errs = append(errs, errors.New("--snapshot-namespace is required with --snapshot-configmap"))
	}
	if f.SnapshotConfigMap == "" && f.SnapshotFile == "" {
		errs = append(errs, errors.New("one of --snapshot-configmap or --snapshot-file is required"))
	}
	return f, errors.Join(errs...)
}

// AnnotationSnapshotVersion is set by each gatewaypod on its own Pod to the
// snapshot version it serves; the controller counts ready pods carrying the
// current version to decide that the instance is Programmed.
const AnnotationSnapshotVersion = "portico.dev/snapshot-version"
