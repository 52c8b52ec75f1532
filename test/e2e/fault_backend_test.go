package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rawBackend listens on addr and hands every connection to serve; it is
// closed (with every connection) when the spec ends. It returns the count
// of connections accepted.
func rawBackend(addr string, serve func(net.Conn)) *atomic.Int64 {
	ln, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	accepted := &atomic.Int64{}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c)
		}
	}()
	DeferCleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return accepted
}

// hang reads requests and never answers.
func hang(c net.Conn) { _, _ = bufio.NewReader(c).ReadString(0) }

// reset reads the request header and resets the connection (RST, no answer).
func reset(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			break
		}
	}
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// slowBackend answers every request after delay.
func slowBackend(name, addr string, delay time.Duration) {
	ln, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	DeferCleanup(srv.Close)
}

// procStats is the runtime footprint of one gateway process.
type procStats struct{ goroutines, heap float64 }

func statsOf(ip string) procStats {
	m := podMetrics(ip)
	return procStats{goroutines: metricValue(m, "go_goroutines"), heap: metricValue(m, "go_memstats_heap_inuse_bytes")}
}

// faultBackendSpecs: timeouts and retries behave as configured, and the
// proxy's goroutines and memory stay bounded while backends misbehave.
func faultBackendSpecs() {
	const (
		hangHost    = "hang.faults.example"
		retryHost   = "retry.faults.example"
		noRetryHost = "noretry.faults.example"
		slowHost    = "slow.faults.example"
		tooSlowHost = "tooslow.faults.example"
	)
	readTimeout := map[string]string{"nginx.ingress.kubernetes.io/proxy-read-timeout": "1"}

	It("times out a hanging backend, retries a resetting one as configured, waits for a slow one, within bounded goroutines and memory", func() {
		rawBackend("10.244.3.40:9000", hang)
		resets := rawBackend("10.244.3.41:9000", reset)
		resets2 := rawBackend("10.244.3.44:9000", reset)
		slowBackend("slow", "10.244.3.42:9000", 300*time.Millisecond)
		slowBackend("tooslow", "10.244.3.43:9000", 1500*time.Millisecond)
		faultService("hang", 9000, "10.244.3.40")
		faultService("flaky", 9000, "10.244.3.41", "10.244.3.3")  // resets, then "other"
		faultService("flaky2", 9000, "10.244.3.44", "10.244.3.3") // the same, another endpoint
		faultService("slow", 9000, "10.244.3.42")
		faultService("tooslow", 9000, "10.244.3.43")
		faultIngress("hang", hangHost, readTimeout, prefixPath("/", "hang"))
		faultIngress("retry", retryHost, nil, prefixPath("/", "flaky"))
		faultIngress("noretry", noRetryHost, map[string]string{"nginx.ingress.kubernetes.io/proxy-next-upstream-tries": "1"}, prefixPath("/", "flaky2"))
		faultIngress("slow", slowHost, readTimeout, prefixPath("/", "slow"))
		faultIngress("tooslow", tooSlowHost, readTimeout, prefixPath("/", "tooslow"))
		ips := gatewayPodIPs(faultInstance)
		for _, ip := range ips {
			Eventually(func() int { return getStatus(ip, slowHost, "/") }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
			Eventually(func() int { return getStatus(ip, noRetryHost, "/") }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
			Eventually(func() int { return getStatus(ip, retryHost, "/") }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		}
		base := map[string]procStats{}
		for _, ip := range ips {
			base[ip] = statsOf(ip)
		}

		run := func(host string, d time.Duration) *loadResult {
			return load{Workers: 4, Interval: 5 * time.Millisecond, Duration: d, Targets: ips, Host: host, Path: "/%d", Timeout: 10 * time.Second}.run()
		}
		peak := map[string]procStats{}
		sample := func() {
			for _, ip := range ips {
				s := statsOf(ip)
				p := peak[ip]
				peak[ip] = procStats{max(p.goroutines, s.goroutines), max(p.heap, s.heap)}
			}
		}

		By("a backend that never answers: 504 after the 1 s read timeout")
		stopHang, hangDone := load{Workers: 4, Duration: 4 * time.Second, Targets: ips, Host: hangHost, Path: "/%d", Timeout: 10 * time.Second}.start()
		for i := 0; i < 6; i++ {
			time.Sleep(500 * time.Millisecond)
			sample()
		}
		<-hangDone
		hung := stopHang()
		GinkgoWriter.Printf("hang: %s\n", hung)
		Expect(hung.Outcomes).To(HaveKey("504"))
		Expect(hung.Outcomes["504"]).To(Equal(hung.Sent), "every request ends with 504: %v", hung.Outcomes)
		Expect(hung.Quantile(0)).To(BeNumerically(">=", 950*time.Millisecond), "not before the read timeout")
		Expect(hung.Quantile(1)).To(BeNumerically("<", 3*time.Second), "and soon after it")

		By("a backend that resets connections, beside a good one: retried by default, not with tries=1")
		// Each reset endpoint has its own passive-health state (ejected
		// after 5 resets in a row); the readiness probes above may have hit it.
		r0 := resets.Load()
		retried := run(retryHost, 3*time.Second)
		GinkgoWriter.Printf("reset, default retries: %s; %d connections reset\n", retried, resets.Load()-r0)
		Expect(resets.Load()-r0).To(BeNumerically(">", 0), "the resetting endpoint was tried")
		Expect(retried.Failed).To(BeZero(), "the reset endpoint is retried on the good one: %v", retried.Outcomes)
		r0 = resets2.Load()
		notRetried := run(noRetryHost, 3*time.Second)
		GinkgoWriter.Printf("reset, tries=1: %s; %d connections reset\n", notRetried, resets2.Load()-r0)
		Expect(notRetried.Outcomes).To(HaveKey("502"), "with proxy-next-upstream-tries=1 a reset is a 502")
		Expect(notRetried.Failed).To(Equal(notRetried.Outcomes["502"]))
		Expect(notRetried.Outcomes).To(HaveKey("200"), "the good endpoint still answers")
		sample()

		By("a slow backend within the timeout is waited for; one beyond it is a 504")
		slow := run(slowHost, 3*time.Second)
		GinkgoWriter.Printf("slow 300 ms: %s\n", slow)
		Expect(slow.Failed).To(BeZero(), "%v", slow.Outcomes)
		Expect(slow.Quantile(0)).To(BeNumerically(">=", 300*time.Millisecond))
		tooSlow := run(tooSlowHost, 3*time.Second)
		GinkgoWriter.Printf("slow 1.5 s: %s\n", tooSlow)
		Expect(tooSlow.Outcomes["504"]).To(Equal(tooSlow.Sent), "%v", tooSlow.Outcomes)
		sample()

		By("goroutines and heap go back to their level once the load is over")
		for _, ip := range ips {
			GinkgoWriter.Printf("pod %s: goroutines %v -> peak %v, heap %.1f MiB -> peak %.1f MiB\n", ip,
				base[ip].goroutines, peak[ip].goroutines, base[ip].heap/(1<<20), peak[ip].heap/(1<<20))
			Expect(peak[ip].goroutines).To(BeNumerically("<", base[ip].goroutines+200), "goroutines bounded under load")
			Eventually(func() float64 { return statsOf(ip).goroutines }, 20*time.Second, 500*time.Millisecond).
				Should(BeNumerically("<=", base[ip].goroutines+10), "pod %s: goroutines back to their level", ip)
			Expect(statsOf(ip).heap).To(BeNumerically("<", base[ip].heap+32<<20), "pod %s: heap bounded", ip)
		}
		sent := hung.Sent + retried.Sent + notRetried.Sent + slow.Sent + tooSlow.Sent
		recordFault("hanging backend", "backend accepts, never answers; proxy-read-timeout 1 s", hung.Sent, hung.Failed,
			fmt.Sprintf("all 504, latency %s..%s", hung.Quantile(0).Round(time.Millisecond), hung.Quantile(1).Round(time.Millisecond)))
		recordFault("resetting backend (default retries)", "1 of 2 endpoints resets every connection", retried.Sent, retried.Failed,
			fmt.Sprintf("%d resets, all retried on the good endpoint (then ejected)", resets.Load()))
		recordFault("resetting backend (tries=1)", "same, proxy-next-upstream-tries 1", notRetried.Sent, notRetried.Failed,
			fmt.Sprintf("%d x 502 (expected: no retry)", notRetried.Outcomes["502"]))
		recordFault("slow backend", "300 ms answers, 1 s timeout / 1.5 s answers, 1 s timeout", slow.Sent+tooSlow.Sent, slow.Failed+tooSlow.Failed,
			fmt.Sprintf("all 200 (p50 %s) / all 504 (expected)", slow.Quantile(0.5).Round(time.Millisecond)))
		var worst []string
		for _, ip := range ips {
			worst = append(worst, fmt.Sprintf("%v->%v", base[ip].goroutines, peak[ip].goroutines))
		}
		recordFault("proxy footprint", "the 4 loads above", sent, 0, "goroutines base->peak "+strings.Join(worst, ", ")+"; back to base after")
	})
}
