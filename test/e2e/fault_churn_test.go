package e2e

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/proxy"
)

// faultChurnSpecs: endpoints removed and added every second under load. The
// route has proxy-next-upstream-tries 1: no retry hides a request sent to
// an endpoint that is gone, so the counts show what churn itself costs.
func faultChurnSpecs() {
	const churnHost = "churn.faults.example"
	const rounds = 5
	next := 50                        // last octet of the next backend, 10.244.3.<next>
	var ips []string                  // the EndpointSlice now
	srvs := map[string]*http.Server{} // by IP
	newBackend := func() string {
		ip := fmt.Sprintf("10.244.3.%d", next)
		next++
		srvs[ip] = echoBackend("churn-"+ip, ip+":9000")
		return ip
	}

	It("loses nothing when each endpoint leaves the EndpointSlice before it stops", func() {
		for range 3 {
			ips = append(ips, newBackend())
		}
		faultService("churn", 9000, ips...)
		faultIngress("churn", churnHost, map[string]string{"nginx.ingress.kubernetes.io/proxy-next-upstream-tries": "1"}, prefixPath("/", "churn"))
		gws := gatewayPodIPs(faultInstance)
		for _, ip := range gws {
			Eventually(func() int { return getStatus(ip, churnHost, "/") }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		}
		stopLoad, _ := load{Workers: 4, Interval: 5 * time.Millisecond, Duration: 60 * time.Second, Targets: gws, Host: churnHost, Path: "/%d"}.start()
		start := time.Now()
		for range rounds {
			round := time.Now()
			gone := ips[0]
			ips = append(ips[1:], newBackend())
			old := waitServing(faultInstance, 2).Status.Snapshot.Version
			setEndpoints("churn", ips...)
			waitServingNew(faultInstance, 2, old) // both pods serve the slice without gone
			Expect(srvs[gone].Close()).To(Succeed())
			time.Sleep(time.Second - time.Since(round)) // one change a second at most
		}
		took := time.Since(start)
		res := stopLoad()
		GinkgoWriter.Printf("graceful churn, %d rounds in %s: %s\n", rounds, took.Round(time.Millisecond), res)
		Expect(res.Failed).To(BeZero(), "%s", res)
		recordFault("endpoint churn, graceful", fmt.Sprintf("%d x (add 1, remove 1 from the slice, then stop it) in %s", rounds, took.Round(100*time.Millisecond)),
			res.Sent, res.Failed, "0 failed")
	})

	It("bounds failures by the ejection window and reports them when endpoints stop before they leave the slice", func() {
		// Fresh backends: the previous spec's servers closed with it.
		ips = []string{newBackend(), newBackend(), newBackend()}
		old := waitServing(faultInstance, 2).Status.Snapshot.Version
		setEndpoints("churn", ips...)
		waitServingNew(faultInstance, 2, old)
		gws := gatewayPodIPs(faultInstance)
		ejectedPeak := 0.0
		fivexx := func() float64 {
			var t float64
			for _, ip := range gws {
				t += podMetric(ip, proxy.MetricRequests, "code", "5xx")
			}
			return t
		}
		before5xx := fivexx()
		const workers = 4
		stopLoad, _ := load{Workers: workers, Interval: 5 * time.Millisecond, Duration: 60 * time.Second, Targets: gws, Host: churnHost, Path: "/%d"}.start()
		start := time.Now()
		for range rounds {
			round := time.Now()
			gone := ips[0]
			Expect(srvs[gone].Close()).To(Succeed()) // stops first: refused connections
			for time.Since(round) < 700*time.Millisecond {
				for _, ip := range gws {
					ejectedPeak = max(ejectedPeak, podMetric(ip, proxy.MetricEjectedEndpoints))
				}
				time.Sleep(100 * time.Millisecond)
			}
			ips = append(ips[1:], newBackend())
			setEndpoints("churn", ips...)
			time.Sleep(time.Second - time.Since(round))
		}
		took := time.Since(start)
		waitServing(faultInstance, 2)
		res := stopLoad()
		after5xx := fivexx()
		GinkgoWriter.Printf("abrupt churn, %d rounds in %s: %s; ejected peak %v; pods' 5xx +%v\n", rounds, took.Round(time.Millisecond), res, ejectedPeak, after5xx-before5xx)
		// Per stopped endpoint and pod, at most MaxFailures consecutive
		// failures before ejection, plus the requests in flight on it.
		bound := rounds * (len(gws)*balancer.DefaultPassiveHealth.MaxFailures + workers)
		Expect(res.Failed).To(BeNumerically("<=", bound), "%s", res)
		Expect(ejectedPeak).To(BeNumerically(">", 0), "the stopped endpoints were ejected, and the gauge said so")
		Expect(after5xx-before5xx).To(BeNumerically(">=", res.Failed), "every failure a client saw is counted by the pods")
		recordFault("endpoint churn, abrupt", fmt.Sprintf("%d x (stop 1 endpoint, 0.7 s later replace it in the slice) in %s", rounds, took.Round(100*time.Millisecond)),
			res.Sent, res.Failed, fmt.Sprintf("bound %d; ejected gauge peak %v; pods counted %v x 5xx", bound, ejectedPeak, after5xx-before5xx))
	})
}
