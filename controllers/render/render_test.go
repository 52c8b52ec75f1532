package render

import (
	"time"

	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

func TestServiceProfile(t *testing.T) {
	tests := map[string]struct {
		spec       gatewayv1alpha1.GatewayConfigSpec
		wantType   corev1.ServiceType
		wantPolicy corev1.ServiceExternalTrafficPolicy
		wantPort   int32
	}{
		"north-south defaults to an external LoadBalancer keeping client IPs": {
			spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficNorthSouth}, wantType: corev1.ServiceTypeLoadBalancer,
			wantPolicy: corev1.ServiceExternalTrafficPolicyLocal, wantPort: 80,
		},
		"east-west defaults to ClusterIP": {
			spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficEastWest}, wantType: corev1.ServiceTypeClusterIP, wantPort: 80,
		},
		"explicit type and port win": {
			spec: gatewayv1alpha1.GatewayConfigSpec{TrafficType: gatewayv1alpha1.TrafficNorthSouth,
				Service: &gatewayv1alpha1.ServiceSpec{Type: corev1.ServiceTypeNodePort, HTTPPort: 8000}},
			wantType: corev1.ServiceTypeNodePort, wantPolicy: corev1.ServiceExternalTrafficPolicyLocal, wantPort: 8000,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: tc.spec}
			svc := NewInstance(gc, Params{Namespace: "ops"}).Service()
			if svc.Spec.Type != tc.wantType || svc.Spec.ExternalTrafficPolicy != tc.wantPolicy || svc.Spec.Ports[0].Port != tc.wantPort {
				t.Errorf("got type %s policy %q port %d", svc.Spec.Type, svc.Spec.ExternalTrafficPolicy, svc.Spec.Ports[0].Port)
			}
			if svc.Namespace != "ops" || svc.Name != "portico-gw" {
				t.Errorf("got %s/%s", svc.Namespace, svc.Name)
			}
		})
	}
}

func TestDeploymentCommandLineRoundTrips(t *testing.T) {
	gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "edge", Replicas: ptr.To(int32(3))}}
	inst := NewInstance(gc, Params{Namespace: "ops", Image: "img:1"})
	d := inst.Deployment(Params{Image: "img:1"})
	c := d.Spec.Template.Spec.Containers[0]
	got, err := podflags.Parse(c.Args)
	if err != nil {
		t.Fatalf("gatewaypod cannot parse the args the operator writes: %v", err)
	}
	if got != inst.Flags() {
		t.Errorf("round trip: got %+v, want %+v", got, inst.Flags())
	}
	if got.SnapshotNamespace != "edge" || got.SnapshotConfigMap != "portico-gw-snapshot" {
		t.Errorf("snapshot source %s/%s", got.SnapshotNamespace, got.SnapshotConfigMap)
	}
	if *d.Spec.Replicas != 3 || c.Image != "img:1" || d.Spec.Template.Spec.ServiceAccountName != "portico-gw" {
		t.Errorf("replicas %d image %s sa %s", *d.Spec.Replicas, c.Image, d.Spec.Template.Spec.ServiceAccountName)
	}
	for k, v := range inst.SelectorLabels() {
		if d.Spec.Template.Labels[k] != v || d.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("selector label %s=%s missing", k, v)
		}
	}
}

// spec.defaults.http1Server reaches the pods' command line, and no value
// leaves gatewaypod's default.
func TestHTTP1ServerFlag(t *testing.T) {
	for in, want := range map[string]string{"": "", "Portico": podflags.HTTP1ServerPortico, "Stdlib": podflags.HTTP1ServerStdlib} {
		gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
			Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "edge",
				Defaults: &gatewayv1alpha1.DefaultsSpec{HTTP1Server: in}}}
		inst := NewInstance(gc, Params{Namespace: "ops", Image: "img:1"})
		got, err := podflags.Parse(inst.Deployment(Params{Image: "img:1"}).Spec.Template.Spec.Containers[0].Args)
		if err != nil {
			t.Fatal(err)
		}
		if got.HTTP1Server != want {
			t.Errorf("http1Server %q: --http1-server=%q, want %q", in, got.HTTP1Server, want)
		}
	}
}

// spec.defaults.passiveHealth reaches the pods' flags; maxFailures 0 is off.
func TestPassiveHealthFlags(t *testing.T) {
	tests := map[string]struct {
		in                 *gatewayv1alpha1.PassiveHealthSpec
		failures           int
		ejection, maxEject time.Duration
	}{
		"unset: gatewaypod's defaults": {},
		"tuned": {in: &gatewayv1alpha1.PassiveHealthSpec{MaxFailures: ptr.To(int32(3)),
			Ejection: &metav1.Duration{Duration: 2 * time.Second}, MaxEjection: &metav1.Duration{Duration: time.Minute}},
			failures: 3, ejection: 2 * time.Second, maxEject: time.Minute},
		"off": {in: &gatewayv1alpha1.PassiveHealthSpec{MaxFailures: ptr.To(int32(0))}, failures: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gc := &gatewayv1alpha1.GatewayConfig{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
				Spec: gatewayv1alpha1.GatewayConfigSpec{Namespace: "edge",
					Defaults: &gatewayv1alpha1.DefaultsSpec{PassiveHealth: tc.in}}}
			inst := NewInstance(gc, Params{Namespace: "ops", Image: "img:1"})
			got, err := podflags.Parse(inst.Deployment(Params{Image: "img:1"}).Spec.Template.Spec.Containers[0].Args)
			if err != nil {
				t.Fatal(err)
			}
			if got.PassiveMaxFailures != tc.failures || got.PassiveEjection != tc.ejection || got.PassiveMaxEjection != tc.maxEject {
				t.Errorf("flags: failures %d ejection %v max %v, want %d %v %v", got.PassiveMaxFailures,
					got.PassiveEjection, got.PassiveMaxEjection, tc.failures, tc.ejection, tc.maxEject)
			}
		})
	}
}
