package minicluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Restart backoff of pod processes (restartPolicy Always): the delay starts at
// restartBackoffMin, doubles after each exit up to restartBackoffMax, and is
// reset once a process has run for restartBackoffReset.
const (
	restartBackoffMin   = 500 * time.Millisecond
	restartBackoffMax   = 10 * time.Second
	restartBackoffReset = 10 * time.Second
)

// tokenExpirationSeconds is what the kubelet asks for its projected token
// (3607 s); the apiserver may extend such pod-bound tokens.
const tokenExpirationSeconds = 3607

// PodRunnerOptions configure Cluster.RunPods.
type PodRunnerOptions struct {
	// Selector selects the Pods to run (in all namespaces), e.g.
	// app.kubernetes.io/name=portico-gateway. Nil selects nothing.
	Selector labels.Selector

	// Binaries maps a container's command[0] (e.g. "/gatewaypod") to the
	// local executable that runs in its place. A Pod whose command[0] is not
	// listed is logged and not run.
	Binaries map[string]string

	// EnvOverride replaces the values of these environment variables as they
	// are resolved (before $(VAR) expansion, so the command line sees them)
	// and adds the ones the Pod does not declare. Example: POD_IP=127.0.0.1.
	EnvOverride map[string]string

	// LogDir receives, per Pod, <pod>.log (the process's stdout and stderr,
	// appended across restarts), <pod>.token and <pod>.kubeconfig (its
	// ServiceAccount identity), and podrunner.log (what the runner did).
	// Default: the Cluster's LogDir + "/pods".
	LogDir string

	// StopGrace is the time between SIGTERM and SIGKILL when a process is
	// stopped. Default 5s.
	StopGrace time.Duration

	// MaxRestarts bounds how often a Pod's process is restarted after it
	// exits; 0 means no limit (restartPolicy Always, with backoff).
	MaxRestarts int

	// Logf, if set, also receives the runner's log lines (for example
	// testing.T.Logf; it must stay valid until Stop returns).
	Logf func(format string, args ...any)
}

// PodRunner is a minimal kubelet for selected Pods: once kwok (or anything
// else) has set a Pod's phase to Running and given it a status.podIP, it runs
// the Pod's first container as one local process, with the container's
// command, args and env resolved as a kubelet would: env values and fieldRefs
// (metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'],
// metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
// status.podIP(s), status.hostIP(s)) and configMapKeyRef / secretKeyRef, then
// $(VAR) expansion in command and args ("$$" escapes).
//
// In place of the kubelet's projected service-account token volume, the
// process gets KUBECONFIG=<LogDir>/<pod>.kubeconfig: the apiserver's address
// and CA plus a pod-bound token for spec.serviceAccountName (default
// "default") from the TokenRequest API, written to <LogDir>/<pod>.token and
// refreshed like the kubelet does. Nothing else from the environment of the
// caller is passed on. Pods with automountServiceAccountToken: false get no
// KUBECONFIG.
//
// The process is stopped (SIGTERM to its process group, then SIGKILL after
// StopGrace) as soon as the Pod is being deleted, and when Stop is called. If
// it exits on its own it is restarted with backoff. Processes die with the
// calling process (parent-death signal).
type PodRunner struct {
	c    *Cluster
	cs   kubernetes.Interface
	o    PodRunnerOptions
	logf *os.File

	cancel   context.CancelFunc
	informer chan struct{} // closed when the informer goroutine returns

	mu       sync.Mutex
	procs    map[types.UID]*podProc
	exits    int // unexpected exits (and failed starts) of pod processes
	stopping bool
	stopOnce sync.Once
}

// RunPods starts a PodRunner for this cluster and waits until it has seen the
// existing Pods. It runs until Stop, ctx cancellation or Cluster.Stop.
func (c *Cluster) RunPods(ctx context.Context, o PodRunnerOptions) (*PodRunner, error) {
	if o.Selector == nil {
		o.Selector = labels.Nothing()
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(c.LogDir, "pods")
	}
	if o.StopGrace == 0 {
		o.StopGrace = 5 * time.Second
	}
	var err error
	if o.LogDir, err = filepath.Abs(o.LogDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(o.LogDir, "podrunner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &PodRunner{
		c: c, cs: c.Clientset, o: o, logf: logf,
		cancel: cancel, informer: make(chan struct{}),
		procs: map[types.UID]*podProc{},
	}
	if err := c.addRunner(r); err != nil {
		cancel()
		_ = logf.Close()
		return nil, err
	}

	sel := o.Selector.String()
	lw := cache.NewFilteredListWatchFromClient(c.Clientset.CoreV1().RESTClient(), "pods", metav1.NamespaceAll,
		func(lo *metav1.ListOptions) { lo.LabelSelector = sel })
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { r.sync(obj, false) },
			UpdateFunc: func(_, obj any) { r.sync(obj, false) },
			DeleteFunc: func(obj any) { r.sync(obj, true) },
		},
	})
	go func() {
		defer close(r.informer)
		ctrl.RunWithContext(rctx)
	}()
	if !cache.WaitForCacheSync(rctx.Done(), ctrl.HasSynced) {
		r.Stop()
		return nil, fmt.Errorf("minicluster: pod runner: cache not synced: %w", ctx.Err())
	}
	// Stop with ctx, too.
	go func() {
		<-rctx.Done()
		r.Stop()
	}()
	r.logln("watching pods with selector %q", sel)
	return r, nil
}

// Running returns the names of the Pods whose process is alive now (not
// while it waits to be restarted), sorted.
func (r *PodRunner) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, p := range r.procs {
		if p.isRunning() {
			names = append(names, p.name)
		}
	}
	slices.Sort(names)
	return names
}

// Restarts returns how many times, in total since RunPods, a Pod's process
// exited (or failed to start) without the runner stopping it, i.e. how many
// restarts a kubelet would count. Zero means every process stayed up.
func (r *PodRunner) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exits
}

// Stop stops watching and stops every process (SIGTERM, then SIGKILL after
// StopGrace) and waits for them to exit. It may be called more than once.
func (r *PodRunner) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		procs := make([]*podProc, 0, len(r.procs))
		for _, p := range r.procs {
			procs = append(procs, p)
		}
		r.mu.Unlock()
		r.cancel()
		<-r.informer
		for _, p := range procs {
			p.stop()
		}
		for _, p := range procs {
			<-p.done
		}
		r.logln("stopped")
		_ = r.logf.Close()
	})
}

func (r *PodRunner) logln(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.logf, "%s %s\n", time.Now().Format("15:04:05.000"), msg)
	if r.o.Logf != nil {
		r.o.Logf("podrunner: %s", msg)
	}
}

// sync reacts to one informer event.
func (r *PodRunner) sync(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	gone := deleted || pod.DeletionTimestamp != nil ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	var toStop []*podProc
	for uid, p := range r.procs {
		// Same name, other UID: the old Pod is gone even if we missed it.
		if p.namespace == pod.Namespace && p.name == pod.Name && (uid != pod.UID || gone) {
			toStop = append(toStop, p)
		}
	}
	start := !gone && r.procs[pod.UID] == nil &&
		pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != ""
	var p *podProc
	if start {
		p = &podProc{
			r: r, pod: pod.DeepCopy(), namespace: pod.Namespace, name: pod.Name, uid: pod.UID,
			stopCh: make(chan struct{}), done: make(chan struct{}),
		}
		r.procs[pod.UID] = p
	}
	r.mu.Unlock()

	for _, p := range toStop {
		if !p.stopped() {
			r.logln("pod %s/%s is going away: stopping its process", p.namespace, p.name)
			p.stop() // asynchronous; run() removes it from procs when done
		}
	}
	if p != nil {
		r.logln("pod %s/%s is Running with IP %s: starting", pod.Namespace, pod.Name, pod.Status.PodIP)
		go p.run()
	}
}

// podProc is the process of one Pod, restarted as needed until stopped.
type podProc struct {
	r               *PodRunner
	pod             *corev1.Pod
	namespace, name string
	uid             types.UID

	stopOnce sync.Once
	stopCh   chan struct{} // closed by stop
	done     chan struct{} // closed when run returns

	mu      sync.Mutex
	running bool
	process *os.Process // the live process while running
}

func (p *podProc) stop() { p.stopOnce.Do(func() { close(p.stopCh) }) }

func (p *podProc) isRunning() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

func (p *podProc) setRunning(v bool) {
	p.mu.Lock()
	p.running = v
	p.mu.Unlock()
}

func (p *podProc) stopped() bool {
	select {
	case <-p.stopCh:
		return true
	default:
		return false
	}
}

// sleep waits d or until stopped; it reports whether it was not stopped.
func (p *podProc) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.stopCh:
		return false
	case <-t.C:
		return true
	}
}

func (p *podProc) logln(format string, args ...any) {
	p.r.logln("pod %s/%s: %s", p.namespace, p.name, fmt.Sprintf(format, args...))
}

// launch is what is needed to start the process.
type launch struct {
	path    string
	args    []string
	env     []string
	refresh time.Time // when to renew the token; zero: never
}

func (p *podProc) run() {
	defer func() {
		p.r.mu.Lock()
		if p.r.procs[p.uid] == p {
			delete(p.r.procs, p.uid)
		}
		p.r.mu.Unlock()
		close(p.done)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()

	logPath := filepath.Join(p.r.o.LogDir, p.name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.logln("cannot open log: %v", err)
		<-p.stopCh
		return
	}
	defer func() { _ = out.Close() }()

	backoff := restartBackoffMin
	restarts := 0
	var l *launch
	for !p.stopped() {
		if l == nil {
			if l, err = p.prepare(ctx); err != nil {
				l = nil
				if p.stopped() {
					return
				}
				if errors.Is(err, errPermanent) {
					p.logln("not runnable: %v", err)
					<-p.stopCh
					return
				}
				p.logln("cannot start yet (retry in %s): %v", backoff, err)
				p.sleep(backoff)
				backoff = min(2*backoff, restartBackoffMax)
				continue
			}
		}

		cmd := exec.Command(l.path, l.args...)
		cmd.Env = l.env
		cmd.Dir = p.r.o.LogDir
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = childSysProcAttr()
		fmt.Fprintf(out, "--- %s minicluster: starting %s %q\n", time.Now().Format(time.RFC3339Nano), l.path, l.args)
		onSpawnThread(func() { err = cmd.Start() })
		if err != nil {
			p.logln("start failed: %v", err)
		} else {
			started := time.Now()
			p.mu.Lock()
			p.process = cmd.Process
			p.mu.Unlock()
			p.setRunning(true)
			p.logln("started pid %d: %s %q", cmd.Process.Pid, l.path, l.args)
			exited := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(exited) }()
			stoppedNow := p.supervise(ctx, cmd, exited, l)
			p.setRunning(false)
			if stoppedNow {
				p.logln("stopped")
				return
			}
			status := "exit status 0"
			if waitErr != nil {
				status = waitErr.Error()
			}
			p.logln("process exited (%s) after %s", status, time.Since(started).Round(time.Millisecond))
			fmt.Fprintf(out, "--- %s minicluster: process exited (%s)\n", time.Now().Format(time.RFC3339Nano), status)
			if time.Since(started) >= restartBackoffReset {
				backoff = restartBackoffMin
			}
		}
		restarts++
		p.r.mu.Lock()
		p.r.exits++
		p.r.mu.Unlock()
		if p.r.o.MaxRestarts > 0 && restarts > p.r.o.MaxRestarts {
			p.logln("giving up after %d restarts", p.r.o.MaxRestarts)
			<-p.stopCh
			return
		}
		p.logln("restarting in %s (restart %d)", backoff, restarts)
		if !p.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, restartBackoffMax)
	}
}

// supervise waits for the process to exit or to be stopped, renewing the
// token file meanwhile. It reports true if the process was stopped by us.
func (p *podProc) supervise(ctx context.Context, cmd *exec.Cmd, exited chan struct{}, l *launch) bool {
	renew := time.NewTimer(time.Hour)
	defer renew.Stop()
	renew.Stop()
	if !l.refresh.IsZero() {
		renew.Reset(time.Until(l.refresh))
	}
	for {
		select {
		case <-exited:
			return false
		case <-p.stopCh:
			if err := terminate(cmd, exited, p.r.o.StopGrace, nil); err != nil {
				p.logln("%v", err)
			}
			return true
		case <-renew.C:
			next, err := p.writeToken(ctx)
			if err != nil {
				p.logln("token renewal failed (retry in 1m): %v", err)
				next = time.Now().Add(time.Minute)
			}
			l.refresh = next
			renew.Reset(time.Until(next))
		}
	}
}

// errPermanent marks errors that retrying cannot fix.
var errPermanent = errors.New("permanent")

// prepare resolves command, args and env and sets up the identity files.
func (p *podProc) prepare(ctx context.Context) (*launch, error) {
	pod := p.pod
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("%w: pod has no containers", errPermanent)
	}
	ctr := &pod.Spec.Containers[0]
	if len(ctr.Command) == 0 {
		return nil, fmt.Errorf("%w: container %s has no command (image entrypoints are unknown here)", errPermanent, ctr.Name)
	}
	path, ok := p.r.o.Binaries[ctr.Command[0]]
	if !ok {
		return nil, fmt.Errorf("%w: no local binary for command %q (PodRunnerOptions.Binaries)", errPermanent, ctr.Command[0])
	}
	order, vars, err := containerEnv(ctx, p.r.cs, pod, ctr, p.r.o.EnvOverride)
	if err != nil {
		return nil, err
	}
	l := &launch{path: path}
	for _, a := range ctr.Command[1:] {
		l.args = append(l.args, ExpandVars(a, vars))
	}
	for _, a := range ctr.Args {
		l.args = append(l.args, ExpandVars(a, vars))
	}
	for _, k := range order {
		l.env = append(l.env, k+"="+vars[k])
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		if l.refresh, err = p.writeToken(ctx); err != nil {
			return nil, err
		}
		kcPath, err := p.writeKubeconfig()
		if err != nil {
			return nil, err
		}
		if _, declared := vars["KUBECONFIG"]; !declared {
			l.env = append(l.env, "KUBECONFIG="+kcPath)
		}
	}
	return l, nil
}

func (p *podProc) serviceAccount() string {
	if sa := p.pod.Spec.ServiceAccountName; sa != "" {
		return sa
	}
	return "default"
}

func (p *podProc) tokenPath() string {
	return filepath.Join(p.r.o.LogDir, p.name+".token")
}

// writeToken gets a pod-bound token for the Pod's ServiceAccount and writes
// it atomically to tokenPath; it returns when to renew it (at 80% of its
// lifetime, at most after 24h, as the kubelet does).
func (p *podProc) writeToken(ctx context.Context) (time.Time, error) {
	exp := int64(tokenExpirationSeconds)
	tr, err := p.r.cs.CoreV1().ServiceAccounts(p.namespace).CreateToken(ctx, p.serviceAccount(), &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.name, UID: p.uid},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("token request for serviceaccount %s/%s: %w", p.namespace, p.serviceAccount(), err)
	}
	if err := writeFileAtomic(p.tokenPath(), []byte(tr.Status.Token), 0o600); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	life := tr.Status.ExpirationTimestamp.Sub(now)
	return now.Add(min(life*8/10, 24*time.Hour)), nil
}

// writeKubeconfig writes <pod>.kubeconfig pointing at the apiserver with the
// Pod's token (inline and as tokenFile, so client-go picks up renewals).
func (p *podProc) writeKubeconfig() (string, error) {
	tok, err := os.ReadFile(p.tokenPath())
	if err != nil {
		return "", err
	}
	cfg := p.r.c.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["minicluster"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{Token: string(tok), TokenFile: p.tokenPath()}
	kc.Contexts["default"] = &clientcmdapi.Context{Cluster: "minicluster", AuthInfo: "serviceaccount", Namespace: p.namespace}
	kc.CurrentContext = "default"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(p.r.o.LogDir, p.name+".kubeconfig")
	return path, writeFileAtomic(path, data, 0o600)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
