// Package minicluster runs a small but real Kubernetes cluster in-process for
// tests (test/e2e) and demos (cmd/demo).
//
// The control plane is controller-runtime's envtest (etcd + kube-apiserver,
// with service-account token signing configured, so the TokenRequest API
// works). With Options.Workloads it also runs kube-controller-manager,
// kube-scheduler and kwok plus one fake Node, so Deployments get ReplicaSets
// and Pods that become Running with a pod IP taken from Options.PodCIDR.
// Cluster.RunPods then acts as a minimal kubelet for selected Pods: it runs
// their first container's command as a local process (see PodRunner).
// EnterPrivateNetwork gives a test binary its own network namespace in which
// every pod IP is a local address.
//
// All binaries are taken from Options.AssetsDir (KUBEBUILDER_ASSETS), as built
// by hack/install-k8s-assets.sh. Linux only.
package minicluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultPodCIDR is the Node's pod CIDR used when Options.PodCIDR is empty.
const DefaultPodCIDR = "10.244.1.0/24"

// DefaultNodeName is the name of the fake Node used when Options.NodeName is empty.
const DefaultNodeName = "minicluster-node"

// DefaultControllers are the kube-controller-manager controllers run when
// Options.Controllers is empty. node-lifecycle-controller is required: it
// removes the node.kubernetes.io/not-ready taint that admission puts on every
// new Node. There is deliberately no endpointslice controller: tests write
// EndpointSlices themselves.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"serviceaccount-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"node-lifecycle-controller",
	"root-ca-certificate-publisher-controller",
}

// DefaultAdvertiseAddress is used when Options.AdvertiseAddress is empty. It
// is from TEST-NET-1 (RFC 5737) and never routed; nothing connects to it.
const DefaultAdvertiseAddress = "192.0.2.1"

// stopGrace is how long a helper process gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// Options configure Start.
type Options struct {
	// AssetsDir is the directory holding etcd, kube-apiserver and, when
	// Workloads is set, kube-controller-manager, kube-scheduler, kwok and
	// kwok-stages.yaml. Empty means $KUBEBUILDER_ASSETS.
	AssetsDir string

	// CRDDirectoryPaths are directories or files with CRDs that are installed
	// before Start returns (passed to envtest; a missing path is an error).
	CRDDirectoryPaths []string

	// Workloads also runs kube-controller-manager, kube-scheduler and kwok and
	// registers one Node, so Deployments get ReplicaSets and Running Pods with
	// pod IPs. Without it only etcd and kube-apiserver run.
	Workloads bool

	// PodCIDR is the Node's spec.podCIDR (default DefaultPodCIDR). kwok gives
	// each Pod on the Node the next free address of this range, starting at
	// the network address + 1 (10.244.1.1, 10.244.1.2, ...).
	PodCIDR string

	// NodeName is the name of the fake Node (default DefaultNodeName).
	NodeName string

	// NodeIP is the Node's InternalIP, which is also the pod IP of
	// hostNetwork Pods. Default: the last host address of PodCIDR
	// (10.244.1.254 for a /24), so it is local inside EnterPrivateNetwork too.
	NodeIP string

	// Controllers overrides the kube-controller-manager --controllers list
	// (default DefaultControllers).
	Controllers []string

	// WorkDir receives the admin kubeconfig and the component logs
	// (logs/<component>.log), which are kept after Stop for debugging. Empty
	// means a new temporary directory that Stop removes.
	WorkDir string

	// AdvertiseAddress is kube-apiserver's --advertise-address, the IP it
	// publishes in the default/kubernetes Endpoints. Default
	// DefaultAdvertiseAddress: the apiserver's own choice needs a default
	// route, which does not exist inside EnterPrivateNetwork.
	AdvertiseAddress string

	// StartTimeout bounds each waiting step of Start (control plane start,
	// Node becoming Ready). Default 60s.
	StartTimeout time.Duration
}

// Cluster is a running mini cluster. Create it with Start, release it with Stop.
type Cluster struct {
	// Config is a rest.Config for the admin user (group system:masters).
	Config *rest.Config
	// KubeconfigPath is an admin kubeconfig file usable by kubectl and
	// clients in other processes.
	KubeconfigPath string
	// Clientset is a typed client built from Config.
	Clientset kubernetes.Interface
	// WorkDir is Options.WorkDir or the temporary directory in use.
	WorkDir string
	// LogDir is WorkDir/logs, where component logs are written.
	LogDir string
	// NodeName, PodCIDR and NodeIP describe the fake Node (set only with
	// Options.Workloads).
	NodeName, PodCIDR, NodeIP string
	// AssetsDir is the directory the binaries were taken from.
	AssetsDir string

	env        *envtest.Environment
	children   []*child // started in this order, stopped in reverse
	logFiles   []*os.File
	ownWorkDir bool

	mu      sync.Mutex
	runners []*PodRunner
	stopped bool
	// apiServer is the kube-apiserver StartAPIServer started in place of
	// envtest's; apiStopped is set between StopAPIServer and StartAPIServer.
	apiServer  *child
	apiStopped *stoppedAPIServer
}

// Start runs etcd and kube-apiserver (and with o.Workloads the workload
// components and a Node) and returns once the cluster is usable: CRDs are
// installed and, with Workloads, the Node is Ready and schedulable. ctx bounds
// the start-up only; the cluster keeps running until Stop. On error, whatever
// was started is stopped again.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.AssetsDir == "" {
		return nil, errors.New("minicluster: no AssetsDir and KUBEBUILDER_ASSETS is not set (run make k8s-assets)")
	}
	assets, err := filepath.Abs(o.AssetsDir)
	if err != nil {
		return nil, err
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	need := []string{"etcd", "kube-apiserver"}
	if o.Workloads {
		need = append(need, "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml")
	}
	for _, n := range need {
		if _, err := os.Stat(filepath.Join(assets, n)); err != nil {
			return nil, fmt.Errorf("minicluster: missing asset %s (run make k8s-assets): %w", n, err)
		}
	}

	c := &Cluster{AssetsDir: assets, WorkDir: o.WorkDir}
	if c.WorkDir == "" {
		if c.WorkDir, err = os.MkdirTemp("", "minicluster-"); err != nil {
			return nil, err
		}
		c.ownWorkDir = true
	}
	if c.WorkDir, err = filepath.Abs(c.WorkDir); err != nil {
		return nil, err
	}
	c.LogDir = filepath.Join(c.WorkDir, "logs")
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()

	if err := c.startControlPlane(o); err != nil {
		return nil, err
	}
	if o.Workloads {
		if err := c.startWorkloads(ctx, o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startControlPlane starts etcd + kube-apiserver through envtest and writes
// the admin kubeconfig.
func (c *Cluster) startControlPlane(o Options) error {
	etcdLog, err := os.OpenFile(filepath.Join(c.LogDir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	apiLog, err := os.OpenFile(filepath.Join(c.LogDir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = etcdLog.Close()
		return err
	}
	c.logFiles = append(c.logFiles, etcdLog, apiLog) // closed by Stop

	binDir := filepath.Join(c.WorkDir, "bin")
	etcdPath, err := pdeathsigWrapper(binDir, filepath.Join(c.AssetsDir, "etcd"))
	if err != nil {
		return err
	}
	apiPath, err := pdeathsigWrapper(binDir, filepath.Join(c.AssetsDir, "kube-apiserver"))
	if err != nil {
		return err
	}
	useExisting := false
	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    c.AssetsDir,
		CRDDirectoryPaths:        o.CRDDirectoryPaths,
		ErrorIfCRDPathMissing:    true,
		UseExistingCluster:       &useExisting,
		ControlPlaneStartTimeout: o.StartTimeout,
		ControlPlaneStopTimeout:  stopGrace,
	}
	c.env.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath, Out: etcdLog, Err: etcdLog}
	c.env.ControlPlane.APIServer = &envtest.APIServer{Path: apiPath, Out: apiLog, Err: apiLog}
	adv := o.AdvertiseAddress
	if adv == "" {
		adv = DefaultAdvertiseAddress
	}
	c.env.ControlPlane.APIServer.Configure().Set("advertise-address", adv)
	if _, err := os.Stat(filepath.Join(c.AssetsDir, "kubectl")); err == nil {
		c.env.ControlPlane.KubectlPath = filepath.Join(c.AssetsDir, "kubectl")
	}

	onSpawnThread(func() { _, err = c.env.Start() })
	if err != nil {
		return fmt.Errorf("minicluster: start control plane (logs in %s): %w", c.LogDir, err)
	}

	admin, err := c.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return fmt.Errorf("minicluster: add admin user: %w", err)
	}
	c.Config = admin.Config()
	kc, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	c.KubeconfigPath = filepath.Join(c.WorkDir, "admin.kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, kc, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.WorkDir, "ca.crt"), c.Config.CAData, 0o644); err != nil {
		return err
	}
	c.Clientset, err = kubernetes.NewForConfig(c.Config)
	return err
}

// pdeathsigWrapper returns an executable that runs target with a parent-death
// signal, so the process dies with us even though envtest starts it without
// one. It uses setpriv(1) (util-linux); without setpriv it returns target.
func pdeathsigWrapper(dir, target string) (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return target, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, filepath.Base(target))
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL %s \"$@\"\n", shellQuote(setpriv), shellQuote(target))
	return p, os.WriteFile(p, []byte(script), 0o755)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startWorkloads registers the Node and starts kube-controller-manager,
// kube-scheduler and kwok, then waits for the Node to be Ready and untainted.
func (c *Cluster) startWorkloads(ctx context.Context, o Options) error {
	c.NodeName, c.PodCIDR, c.NodeIP = o.NodeName, o.PodCIDR, o.NodeIP
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName
	}
	if c.PodCIDR == "" {
		c.PodCIDR = DefaultPodCIDR
	}
	_, ipnet, err := net.ParseCIDR(c.PodCIDR)
	if err != nil {
		return fmt.Errorf("minicluster: PodCIDR: %w", err)
	}
	c.PodCIDR = ipnet.String()
	if c.NodeIP == "" {
		c.NodeIP = lastHostAddr(ipnet).String()
	}
	controllers := o.Controllers
	if len(controllers) == 0 {
		controllers = DefaultControllers
	}

	// The Node goes first so kwok's node cache knows its podCIDR before any
	// Pod lands on it (kwok falls back to the node IP otherwise).
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: c.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": c.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Spec: corev1.NodeSpec{PodCIDR: c.PodCIDR, PodCIDRs: []string{c.PodCIDR}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: c.NodeIP},
			{Type: corev1.NodeHostName, Address: c.NodeName},
		}},
	}
	if _, err := c.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("minicluster: create node: %w", err)
	}

	kc := c.KubeconfigPath
	specs := []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + kc,
			"--leader-elect=false",
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--controllers=" + strings.Join(controllers, ","),
			"--root-ca-file=" + filepath.Join(c.WorkDir, "ca.crt"),
			// kwok's heartbeat stage reports every 20-45 s; the 50 s default
			// grace is too tight on a loaded machine.
			"--node-monitor-grace-period=2m",
			"--kube-api-qps=200", "--kube-api-burst=400",
		}},
		{"kube-scheduler", []string{
			"--kubeconfig=" + kc,
			"--leader-elect=false",
			"--secure-port=0",
			"--kube-api-qps=200", "--kube-api-burst=400",
		}},
		{"kwok", []string{
			"--kubeconfig=" + kc,
			"--manage-all-nodes=true",
			"--server-address=",
			"--config=" + filepath.Join(c.AssetsDir, "kwok-stages.yaml"),
			"--cidr=" + c.PodCIDR,
			"--node-ip=" + c.NodeIP,
		}},
	}
	for _, s := range specs {
		ch, err := startChild(s.name, filepath.Join(c.AssetsDir, s.name), s.args, filepath.Join(c.LogDir, s.name+".log"))
		if err != nil {
			return err
		}
		c.children = append(c.children, ch)
	}

	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := c.waitNodeSchedulable(ctx); err != nil {
		return fmt.Errorf("minicluster: node %s not Ready and untainted (logs in %s): %w", c.NodeName, c.LogDir, err)
	}
	return nil
}

func (c *Cluster) waitNodeSchedulable(ctx context.Context) error {
	var last string
	for {
		for _, ch := range c.children {
			if !ch.alive() {
				return fmt.Errorf("%s exited: %v", ch.name, ch.waitErr)
			}
		}
		n, err := c.Clientset.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		default:
			ready := false
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			tainted := ""
			for _, t := range n.Spec.Taints {
				if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
					tainted = t.Key
				}
			}
			if ready && tainted == "" {
				return nil
			}
			last = fmt.Sprintf("ready=%v taint=%q", ready, tainted)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %s)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lastHostAddr returns the highest address of n below its broadcast address.
func lastHostAddr(n *net.IPNet) net.IP {
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	for i := range ip {
		ip[i] |= ^n.Mask[i]
	}
	if len(n.Mask)*8-maskOnes(n) >= 2 { // skip the broadcast address
		ip[len(ip)-1]--
	}
	return ip
}

func maskOnes(n *net.IPNet) int { o, _ := n.Mask.Size(); return o }

// Stop stops everything Start and RunPods started, in reverse order: pod
// processes, kwok, kube-scheduler, kube-controller-manager, kube-apiserver,
// etcd. Each process gets SIGTERM and, after a grace period, SIGKILL. If
// Options.WorkDir was empty, the temporary WorkDir is removed. Stop may be
// called more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	runners := c.runners
	c.runners = nil
	apiServer := c.apiServer
	c.mu.Unlock()

	var errs []error
	for i := len(runners) - 1; i >= 0; i-- {
		runners[i].Stop()
	}
	for i := len(c.children) - 1; i >= 0; i-- {
		if err := c.children[i].stop(stopGrace); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.children[i].name, err))
		}
	}
	if apiServer != nil {
		if err := apiServer.stop(stopGrace); err != nil {
			errs = append(errs, fmt.Errorf("kube-apiserver: %w", err))
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("control plane: %w", err))
		}
	}
	for _, f := range c.logFiles {
		_ = f.Close()
	}
	if c.ownWorkDir {
		if err := os.RemoveAll(c.WorkDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// addRunner records r so that Stop stops it; it fails once Stop has begun.
func (c *Cluster) addRunner(r *PodRunner) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("minicluster: cluster stopped")
	}
	c.runners = append(c.runners, r)
	return nil
}
