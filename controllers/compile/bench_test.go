package compile

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// scaleInputs builds n Ingresses in n/10 namespaces, each with its own host,
// two paths and a Service of 5 ready endpoints (n=10,000 -> 50,000
// endpoints); every fifth carries annotations and every tenth a canary.
func scaleInputs(n int) Inputs {
	in := Inputs{Instance: "gw", IngressClasses: []networkingv1.IngressClass{class("portico", "gw", true)}}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ns := fmt.Sprintf("team-%d", i/10)
		svc := fmt.Sprintf("svc-%d", i)
		in.Services = append(in.Services, corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
		eps := make([]discoveryv1.Endpoint, 5)
		for j := range eps {
			eps[j] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i>>8&255, i&255, j+1)}}
		}
		in.EndpointSlices = append(in.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: eps,
		})
		ing := ingress(ns, fmt.Sprintf("ing-%d", i), "", 0, fmt.Sprintf("app-%d.example.com", i),
			path{"/", prefix, svc, portHTTP}, path{"/api/v1", exact, svc, port80})
		ing.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(i) * time.Second))
		switch {
		case i%10 == 1:
			ing = annotate(ingress(ns, fmt.Sprintf("ing-%d", i), "", 0, fmt.Sprintf("app-%d.example.com", i-1), path{"/", prefix, svc, portHTTP}),
				"nginx.ingress.kubernetes.io/canary", "true", "nginx.ingress.kubernetes.io/canary-weight", "10", "nginx.ingress.kubernetes.io/canary-by-header", "X-Canary")
			ing.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(i) * time.Second))
		case i%5 == 0:
			ing.Annotations = map[string]string{
				"nginx.ingress.kubernetes.io/enable-cors": "true", "nginx.ingress.kubernetes.io/limit-rps": "100",
				"nginx.ingress.kubernetes.io/proxy-body-size": "8m", "nginx.ingress.kubernetes.io/affinity": "cookie",
			}
		}
		in.Ingresses = append(in.Ingresses, ing)
	}
	return in
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		in := scaleInputs(n)
		b.Run(fmt.Sprintf("ingresses=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var out Output
			for b.Loop() {
				out = Compile(in)
			}
			raw := len(out.Encoded)
			b.ReportMetric(float64(raw), "encoded-bytes")
			for _, r := range out.Results {
				if !r.Accepted {
					b.Fatalf("%s rejected: %s", r.Ingress, r.Message)
				}
			}
		})
	}
}

// TestTenThousandIngressesFitOneConfigMap checks that 10,000 Ingresses
// (50,000 endpoints) compile into a snapshot under the 1 MiB ConfigMap cap.
// Speed is measured by BenchmarkCompile, not asserted here.
func TestTenThousandIngressesFitOneConfigMap(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test: 10,000 Ingresses")
	}
	out := Compile(scaleInputs(10000))
	if len(out.Encoded) > 1<<20 {
		t.Errorf("encoded snapshot is %d bytes, above the 1 MiB ConfigMap cap", len(out.Encoded))
	}
}
