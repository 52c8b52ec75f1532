package minicluster_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portico-dev/portico/internal/minicluster"
)

// The pod processes are this test binary in "fake server" mode, selected by
// an env var that the PodRunner adds through EnvOverride.
const fakeBinEnv = "MINICLUSTER_TEST_FAKEBIN"

const (
	podRange = "10.244.0.0/16" // made local by EnterPrivateNetwork
	podCIDR  = "10.244.1.0/24" // the Node's range, inside podRange
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeBinEnv) == "1" {
		os.Exit(fakeServerMain())
	}
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		inChild, code, err := minicluster.EnterPrivateNetwork(podRange)
		if err != nil {
			fmt.Fprintln(os.Stderr, "EnterPrivateNetwork:", err)
			os.Exit(1)
		}
		if !inChild {
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// fakeInfo is what the fake server answers on GET /.
type fakeInfo struct {
	Pid      int      `json:"pid"`
	Args     []string `json:"args"`
	EnvNames []string `json:"envNames"`
	Greeting string   `json:"greeting"`
	Literal  string   `json:"literal"`
	SelfPod  string   `json:"selfPod"` // name read back with the SA token
	SelfIP   string   `json:"selfIP"`
	PodErr   string   `json:"podErr,omitempty"`
	User     string   `json:"user"`
	UserErr  string   `json:"userErr,omitempty"`
}

// fakeServerMain is the "/fakebin" of the test Deployment.
func fakeServerMain() int {
	fs := flag.NewFlagSet("fakebin", flag.ContinueOnError)
	listen := fs.String("listen", "", "address")
	literal := fs.String("literal", "", "echoed back")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	info := fakeInfo{Pid: os.Getpid(), Args: os.Args[1:], Greeting: os.Getenv("GREETING"), Literal: *literal}
	for _, kv := range os.Environ() {
		info.EnvNames = append(info.EnvNames, strings.SplitN(kv, "=", 2)[0])
	}
	slices.Sort(info.EnvNames)

	// Use the identity the PodRunner gave us.
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		return 1
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if pod, err := cs.CoreV1().Pods(os.Getenv("POD_NAMESPACE")).Get(ctx, os.Getenv("POD_NAME"), metav1.GetOptions{}); err != nil {
		info.PodErr = err.Error()
	} else {
		info.SelfPod, info.SelfIP = pod.Name, pod.Status.PodIP
	}
	if ssr, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil {
		info.UserErr = err.Error()
	} else {
		info.User = ssr.Status.UserInfo.Username
	}
	fmt.Printf("fakebin: %+v\n", info)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "bye")
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(3) }()
	})
	err = http.ListenAndServe(*listen, mux)
	fmt.Fprintln(os.Stderr, "listen:", err)
	return 1
}

// eventually polls f every 200ms until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var httpClient = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

func getInfo(ip string) (*fakeInfo, error) {
	resp, err := httpClient.Get("http://" + net.JoinHostPort(ip, "8080") + "/")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var fi fakeInfo
	if err := json.NewDecoder(resp.Body).Decode(&fi); err != nil {
		return nil, err
	}
	return &fi, nil
}

func TestClusterRunsDeploymentPods(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS not set: run `make k8s-assets` (make test sets it)")
	}
	workDir, err := os.MkdirTemp("", "minicluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MINICLUSTER_TEST_KEEP") != "" {
			t.Logf("logs kept in %s", workDir)
			return
		}
		_ = os.RemoveAll(workDir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t0 := time.Now()
	c, err := minicluster.Start(ctx, minicluster.Options{AssetsDir: assets, Workloads: true, PodCIDR: podCIDR, WorkDir: workDir})
	if err != nil {
		t.Fatal(err)
	}
	tStarted := time.Since(t0)
	t.Logf("cluster started in %s (node %s, podCIDR %s, nodeIP %s)", tStarted.Round(time.Millisecond), c.NodeName, c.PodCIDR, c.NodeIP)
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Stop()
		}
	}()

	// The admin kubeconfig works for kubectl.
	if _, err := os.Stat(c.AssetsDir + "/kubectl"); err == nil {
		out, err := exec.Command(c.AssetsDir+"/kubectl", "--kubeconfig="+c.KubeconfigPath, "get", "nodes", "-o", "name").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "node/"+c.NodeName) {
			t.Fatalf("kubectl get nodes: %v: %s", err, out)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runner, err := c.RunPods(ctx, minicluster.PodRunnerOptions{
		Selector:    labels.SelectorFromSet(labels.Set{"app": "fake"}),
		Binaries:    map[string]string{"/fakebin": exe},
		EnvOverride: map[string]string{fakeBinEnv: "1"},
		Logf:        t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}

	cs := c.Clientset
	const ns, sa = "mc-test", "fake-sa"
	mustCreate := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	mustCreate("namespace", err)
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	mustCreate("serviceaccount", err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	mustCreate("role", err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}, metav1.CreateOptions{})
	mustCreate("rolebinding", err)

	replicas := int32(2)
	podLabels := map[string]string{"app": "fake"}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	t1 := time.Now()
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fake"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName: sa,
					Containers: []corev1.Container{{
						Name:    "fake",
						Image:   "example.invalid/fakebin:latest",
						Command: []string{"/fakebin"},
						Args:    []string{"--listen=$(POD_IP):8080", "--literal=$$(POD_IP)"},
						Env: []corev1.EnvVar{
							fieldEnv("POD_IP", "status.podIP"),
							fieldEnv("POD_NAME", "metadata.name"),
							fieldEnv("POD_NAMESPACE", "metadata.namespace"),
							{Name: "GREETING", Value: "hello $(POD_NAME)"},
						},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	mustCreate("deployment", err)

	eventually(t, 60*time.Second, "deployment readyReplicas=2", func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "fake", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 2 {
			return fmt.Errorf("readyReplicas=%d", d.Status.ReadyReplicas)
		}
		return nil
	})
	tReady := time.Since(t1)
	t.Logf("deployment ready in %s", tReady.Round(time.Millisecond))

	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=fake"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("pods: %v, %d", err, len(pods.Items))
	}
	_, cidr, _ := net.ParseCIDR(podCIDR)
	var names []string
	infos := map[string]*fakeInfo{}
	for _, p := range pods.Items {
		names = append(names, p.Name)
		ip := p.Status.PodIP
		if !cidr.Contains(net.ParseIP(ip)) {
			t.Fatalf("pod %s IP %q not in %s", p.Name, ip, podCIDR)
		}
		var fi *fakeInfo
		eventually(t, 20*time.Second, "GET "+ip, func() (err error) {
			fi, err = getInfo(ip)
			return err
		})
		infos[p.Name] = fi
		t.Logf("pod %s (%s): %+v", p.Name, ip, *fi)
		if want := []string{"--listen=" + ip + ":8080", "--literal=$(POD_IP)"}; !slices.Equal(fi.Args, want) {
			t.Errorf("args %q, want %q", fi.Args, want)
		}
		if want := []string{"GREETING", "KUBECONFIG", fakeBinEnv, "POD_IP", "POD_NAME", "POD_NAMESPACE"}; !slices.Equal(fi.EnvNames, want) {
			t.Errorf("env names %q, want %q", fi.EnvNames, want)
		}
		if fi.Greeting != "hello "+p.Name {
			t.Errorf("GREETING=%q", fi.Greeting)
		}
		if fi.SelfPod != p.Name || fi.SelfIP != ip || fi.PodErr != "" {
			t.Errorf("pod read with SA token: %q %q %q", fi.SelfPod, fi.SelfIP, fi.PodErr)
		}
		if want := "system:serviceaccount:" + ns + ":" + sa; fi.User != want {
			t.Errorf("user %q (%s), want %q", fi.User, fi.UserErr, want)
		}
	}
	slices.Sort(names)
	eventually(t, 10*time.Second, "kube-root-ca.crt published", func() error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	})
	if got := runner.Running(); !slices.Equal(got, names) {
		t.Errorf("Running() = %q, want %q", got, names)
	}

	// restartPolicy Always: a process that exits is started again.
	victim := pods.Items[0]
	if _, err := httpClient.Get("http://" + net.JoinHostPort(victim.Status.PodIP, "8080") + "/exit"); err != nil {
		t.Fatal(err)
	}
	if n := runner.Restarts(); n != 0 {
		t.Fatalf("Restarts() = %d before any exit", n)
	}
	eventually(t, 20*time.Second, "restart of "+victim.Name, func() error {
		fi, err := getInfo(victim.Status.PodIP)
		if err != nil {
			return err
		}
		if fi.Pid == infos[victim.Name].Pid {
			return fmt.Errorf("still pid %d", fi.Pid)
		}
		return nil
	})

	if n := runner.Restarts(); n != 1 {
		t.Errorf("Restarts() = %d, want 1", n)
	}

	// Deleting the Deployment stops the processes (not counted as restarts).
	t2 := time.Now()
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "fake", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "processes stopped and pods gone", func() error {
		if r := runner.Running(); len(r) != 0 {
			return fmt.Errorf("still running: %q", r)
		}
		for _, p := range pods.Items {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(p.Status.PodIP, "8080"), time.Second); err == nil {
				_ = c.Close()
				return fmt.Errorf("%s still listening", p.Name)
			}
		}
		left, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=fake"})
		if err != nil {
			return err
		}
		if len(left.Items) != 0 {
			return fmt.Errorf("%d pods left", len(left.Items))
		}
		return nil
	})
	t.Logf("deployment deleted, processes stopped and pods gone in %s", time.Since(t2).Round(time.Millisecond))
	if n := runner.Restarts(); n != 1 {
		t.Errorf("Restarts() = %d after deletion, want 1", n)
	}

	t3 := time.Now()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("cluster stopped in %s", time.Since(t3).Round(time.Millisecond))
}

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "a", "POD_IP": "10.0.0.1", "EMPTY": ""}
	for in, want := range map[string]string{
		"":                           "",
		"plain":                      "plain",
		"$(A)":                       "a",
		"--listen=$(POD_IP):8080":    "--listen=10.0.0.1:8080",
		"$$(A)":                      "$(A)",
		"$$$(A)":                     "$a",
		"$(UNKNOWN)":                 "$(UNKNOWN)",
		"x$(EMPTY)y":                 "xy",
		"$(A":                        "$(A",
		"$A":                         "$A",
		"trailing$":                  "trailing$",
		"$(A)$(A)-$$-$":              "aa-$-$",
		"$()":                        "$()",
		"nested $(A$(A))":            "nested $(A$(A))",
		"$(POD_IP)/$(A)/$$(POD_IP)/": "10.0.0.1/a/$(POD_IP)/",
	} {
		if got := minicluster.ExpandVars(in, vars); got != want {
			t.Errorf("ExpandVars(%q) = %q, want %q", in, got, want)
		}
	}
}
