package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// The soak benchmark of issue #7: steady load through the two gateway pods
// of the instance "soak" while its configuration changes every few seconds
// (an Ingress annotation, the backend endpoints, an Ingress replaced), each
// change a new snapshot that both pods must serve. Every sampling window
// reports p50/p99 latency, errors, the pods' RSS and goroutines and the
// goroutines and heap of the test process, which runs the operator.
//
// PORTICO_SOAK_DURATION sets the length (default 20s, what CI runs; `make
// soak` runs 10m), PORTICO_SOAK_SAMPLE the window (default duration/20, at
// least 5s), PORTICO_SOAK_CHANGE_EVERY the pause between changes (default
// 3s). The table goes to GinkgoWriter, the report entry, soak.md in the work
// directory and PORTICO_SOAK_REPORT when set.
const (
	soakInstance = "soak"
	soakClass    = "portico-soak"
	soakNS       = "soak"
	soakHost     = "soak.example"
	// soakTimeoutAnnotation is changed to make a new snapshot with the same routes.
	soakTimeoutAnnotation = "nginx.ingress.kubernetes.io/proxy-read-timeout"
)

// soakBackends are the endpoints of the Service "web"; the third comes and goes.
var soakBackends = []string{"10.244.6.1", "10.244.6.2", "10.244.6.3"}

// soakSample is one row of the table: a window of load and what was
// measured at its end.
type soakSample struct {
	at                   time.Duration // since the start, at the end of the window
	sent, failed         int
	p50, p99             time.Duration
	changes              int           // changes made and served in the window
	maxServed            time.Duration // slowest change, write to both pods serving it
	podRSS, podGoroutine []float64     // per gateway pod, by IP order
	opGoroutines         int           // test process: operator, clients, control-plane helpers
	opHeap               uint64
}

func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	Expect(err).NotTo(HaveOccurred(), "%s=%q", name, v)
	Expect(d).To(BeNumerically(">", 0), "%s", name)
	return d
}

var _ = Describe("Soak", Ordered, Label("soak"), func() {
	BeforeAll(func() {
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: soakNS}})).To(Succeed())
		for i, ip := range soakBackends {
			echoBackend("soak-"+strconv.Itoa(i+1), ip+":9000")
		}
		serviceIn(soakNS, "web", 9000, soakBackends[:2]...)
		createInstance(soakInstance, soakClass, gatewayv1alpha1.TrafficNorthSouth, 2)
		ingressIn(soakNS, soakClass, "web", soakHost, map[string]string{soakTimeoutAnnotation: "30"}, prefixPath("/", "web"))
		waitServing(soakInstance, 2)
		for _, ip := range gatewayPodIPs(soakInstance) {
			Eventually(func() int { return getStatus(ip, soakHost, "/") }, 30*time.Second, 200*time.Millisecond).
				Should(Equal(http.StatusOK), "pod %s serves %s", ip, soakHost)
		}
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpPodLogs()
		}
	})

	It("serves steady load without an error while the configuration changes, in bounded memory and goroutines", func() {
		duration := envDuration("PORTICO_SOAK_DURATION", 20*time.Second)
		window := envDuration("PORTICO_SOAK_SAMPLE", max(5*time.Second, duration/20))
		changeEvery := envDuration("PORTICO_SOAK_CHANGE_EVERY", 3*time.Second)
		gws := gatewayPods(soakInstance)
		Expect(gws).To(HaveLen(2))
		ips := []string{gws[0].Status.PodIP, gws[1].Status.PodIP}
		restarts := pods.Restarts()

		ch := &soakChanger{}
		var samples []soakSample
		begin := time.Now()
		nextChange := begin
		for time.Since(begin) < duration {
			end := time.Now().Add(min(window, duration-time.Since(begin)))
			// Bounded in time (stopped at the window's end, at the latest
			// after 2 minutes) and in count (at most 2000 requests/s).
			stop, _ := load{Workers: 4, Interval: 5 * time.Millisecond, Duration: window + 2*time.Minute,
				MaxRequests: int(window.Seconds()*2000) + 1000, Targets: ips, Host: soakHost, Path: "/s/%d"}.start()
			s := soakSample{}
			for time.Now().Before(end) {
				if wait := time.Until(nextChange); wait > 0 {
					time.Sleep(min(wait, time.Until(end)))
					continue
				}
				served := ch.change()
				s.changes++
				s.maxServed = max(s.maxServed, served)
				nextChange = time.Now().Add(changeEvery)
			}
			res := stop()
			s.at, s.sent, s.failed, s.p50, s.p99 = time.Since(begin), res.Sent, res.Failed, res.Quantile(0.5), res.Quantile(0.99)
			Expect(res.Failed).To(BeZero(), "window ending at %s: %s", s.at.Round(time.Second), res)
			for i, p := range gws {
				rss, err := pods.RSS(p.Namespace, p.Name)
				Expect(err).NotTo(HaveOccurred())
				s.podRSS = append(s.podRSS, float64(rss))
				s.podGoroutine = append(s.podGoroutine, metricValue(podMetrics(ips[i]), "go_goroutines"))
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s.opGoroutines, s.opHeap = runtime.NumGoroutine(), ms.HeapInuse
			samples = append(samples, s)
			GinkgoWriter.Println(s.row())
		}
		table := soakTable(duration, window, changeEvery, samples)
		GinkgoWriter.Print(table)
		AddReportEntry("soak", table)
		Expect(os.WriteFile(filepath.Join(workDir, "soak.md"), []byte(table), 0o644)).To(Succeed())
		if p := os.Getenv("PORTICO_SOAK_REPORT"); p != "" {
			Expect(os.WriteFile(p, []byte(table), 0o644)).To(Succeed())
		}

		Expect(pods.Restarts()).To(Equal(restarts), "no gateway process exited")
		Expect(ch.n).To(BeNumerically(">=", max(1, int(duration/changeEvery)/2)), "changes made every %s", changeEvery)
		expectBounded(samples)
		waitServing(soakInstance, 2)
	})
})

// soakChanger makes the next configuration change and waits until both
// gateway pods serve the new snapshot.
type soakChanger struct {
	n         int // changes made
	endpoints bool
	extra     int
}

// change makes change number n+1 and returns how long it took from the
// write until both pods served a snapshot other than the one before.
func (c *soakChanger) change() time.Duration {
	old := servedVersion()
	start := time.Now()
	var check func(ip string) bool // a change that traffic can see, checked once served
	switch c.n % 3 {
	case 0: // an annotation: same routes, another timeout
		ing := &networkingv1.Ingress{}
		ing.Namespace, ing.Name = soakNS, "web"
		update(ing, func() { ing.Annotations[soakTimeoutAnnotation] = strconv.Itoa(31 + (c.n/3)%60) })
	case 1: // the backends: the third endpoint comes or goes
		c.endpoints = !c.endpoints
		ips := soakBackends[:2]
		if c.endpoints {
			ips = soakBackends
		}
		setEndpointsIn(soakNS, "web", ips...)
	case 2: // an Ingress replaced by another, with a new host
		c.extra++
		name, host := fmt.Sprintf("extra-%d", c.extra), fmt.Sprintf("extra-%d.soak.example", c.extra)
		ingressIn(soakNS, soakClass, name, host, nil, prefixPath("/", "web"))
		if c.extra > 1 {
			Expect(k8sClient.Delete(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: fmt.Sprintf("extra-%d", c.extra-1)}})).To(Succeed())
		}
		check = func(ip string) bool { return getStatus(ip, host, "/") == http.StatusOK }
	}
	c.n++
	var served time.Duration
	Eventually(func(g Gomega) {
		v := servedVersion()
		g.Expect(v).NotTo(Equal(old), "a new snapshot for change %d", c.n)
		for _, p := range gatewayPods(soakInstance) {
			g.Expect(p.Annotations[podflags.AnnotationSnapshotVersion]).To(Equal(v), "pod %s serves %s", p.Name, v)
		}
		served = time.Since(start)
	}, 30*time.Second, 20*time.Millisecond).Should(Succeed(), "change %d served by both pods", c.n)
	if check != nil {
		for _, ip := range gatewayPodIPs(soakInstance) {
			Eventually(func() bool { return check(ip) }, 10*time.Second, 50*time.Millisecond).Should(BeTrue(), "pod %s serves change %d", ip, c.n)
		}
	}
	return served
}

// servedVersion is the snapshot version in the instance's ConfigMap.
func servedVersion() string {
	cm := &corev1.ConfigMap{}
	Expect(k8sClient.Get(ctx, snapshotKey(soakInstance), cm)).To(Succeed())
	return cm.Annotations[podflags.AnnotationSnapshotVersion]
}

// expectBounded fails on growth: goroutines and RSS of the second half of
// the run stay within generous bounds of the first half, so a leak per
// request or per change shows while warm-up and GC noise do not.
func expectBounded(samples []soakSample) {
	Expect(samples).NotTo(BeEmpty())
	half := (len(samples) + 1) / 2
	first, second := samples[:half], samples[half:]
	if len(second) == 0 {
		second = first
	}
	peak := func(rows []soakSample, f func(soakSample) float64) float64 {
		m := 0.0
		for _, r := range rows {
			m = max(m, f(r))
		}
		return m
	}
	for i := range samples[0].podRSS {
		rss := func(s soakSample) float64 { return s.podRSS[i] }
		gor := func(s soakSample) float64 { return s.podGoroutine[i] }
		Expect(peak(second, rss)).To(BeNumerically("<=", 1.5*peak(first, rss)+32<<20), "gateway pod %d RSS grows", i)
		Expect(peak(second, gor)).To(BeNumerically("<=", 1.5*peak(first, gor)+50), "gateway pod %d goroutines grow", i)
	}
	op := func(s soakSample) float64 { return float64(s.opGoroutines) }
	Expect(peak(second, op)).To(BeNumerically("<=", 1.5*peak(first, op)+200), "operator (test process) goroutines grow")
}

func (s soakSample) row() string {
	mib := func(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }
	var rss, gor []string
	for i := range s.podRSS {
		rss, gor = append(rss, mib(s.podRSS[i])), append(gor, strconv.Itoa(int(s.podGoroutine[i])))
	}
	return fmt.Sprintf("| %s | %d | %d | %s | %s | %d | %s | %s | %s | %d | %s |", s.at.Round(time.Second), s.sent, s.failed,
		s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.changes, s.maxServed.Round(time.Millisecond),
		strings.Join(rss, " / "), strings.Join(gor, " / "), s.opGoroutines, mib(float64(s.opHeap)))
}

func soakTable(duration, window, changeEvery time.Duration, samples []soakSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nsoak: %s, windows of %s, a change every %s, 4 workers through 2 gateway pods\n\n", duration, window, changeEvery)
	b.WriteString("| t | requests | failed | p50 | p99 | changes | slowest change served | pod RSS MiB | pod goroutines | operator goroutines | operator heap MiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		b.WriteString(s.row() + "\n")
	}
	return b.String()
}
