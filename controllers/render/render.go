// Package render builds the desired objects of one gateway instance from its
// GatewayConfig: Deployment, Service, ServiceAccount, Role, RoleBinding and
// snapshot ConfigMap. It is pure; controllers apply what it returns.
package render

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// Labels every object of an instance carries.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"
	// LabelGatewayConfig names the owning GatewayConfig; controllers map
	// events on owned objects back to it with this label.
	LabelGatewayConfig = "gateway.portico.dev/gatewayconfig"

	// NameGateway is the app.kubernetes.io/name of gateway pods.
	NameGateway = "portico-gateway"
	// GatewayCommand is the gatewaypod binary in the image.
	GatewayCommand = "/gatewaypod"
	containerName  = "gatewaypod"
	snapshotVolume = "snapshot"
	partsVolume    = "snapshot-parts"
	tlsVolume      = "tls"
	// TLSDir is where the instance TLS Secret is mounted in gateway pods.
	TLSDir = "/etc/portico/tls"
)

// Params are operator-wide settings that complete a GatewayConfig.
type Params struct {
	// Namespace is used when spec.namespace is empty: the operator's own.
	Namespace string
	// Image is used when spec.image is empty: the operator's own version.
	Image string
	// SnapshotPartSize is the largest encoded chunk per snapshot ConfigMap;
	// 0 means snapshot.DefaultPartSize. Tests make it tiny to force splits.
	SnapshotPartSize int
}

// Instance is the resolved identity of one GatewayConfig's objects.
type Instance struct {
	GatewayConfig *gatewayv1alpha1.GatewayConfig
	Namespace     string
	// Name is the common name of the Deployment, Service, ServiceAccount,
	// Role and RoleBinding; two GatewayConfigs never share one because
	// GatewayConfig names are cluster-unique.
	Name string
	// ConfigMap holds the snapshot.
	ConfigMap string
	// TLSSecret holds the key material the snapshot pins by hash; key
	// bytes never go into the ConfigMap.
	TLSSecret string
}

// NewInstance resolves names and the namespace of gc.
func NewInstance(gc *gatewayv1alpha1.GatewayConfig, p Params) Instance {
	ns := gc.Spec.Namespace
	if ns == "" {
		ns = p.Namespace
	}
	name := "portico-" + gc.Name
	return Instance{GatewayConfig: gc, Namespace: ns, Name: name, ConfigMap: name + "-snapshot", TLSSecret: name + "-tls"}
}

// SelectorLabels select the instance's gateway pods.
func (in Instance) SelectorLabels() map[string]string {
	return map[string]string{LabelName: NameGateway, LabelInstance: in.GatewayConfig.Name}
}

// Labels are put on every object of the instance.
func (in Instance) Labels() map[string]string {
	l := in.SelectorLabels()
	l[LabelManagedBy] = "portico"
	l[LabelComponent] = "gateway"
	l[LabelGatewayConfig] = in.GatewayConfig.Name
	return l
}

func (in Instance) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: in.Namespace, Labels: in.Labels()}
}

// Flags is the gatewaypod command line of this instance.
func (in Instance) Flags() podflags.Flags {
	f := podflags.Flags{
		HTTPAddress:       fmt.Sprintf("$(%s):%d", podflags.EnvPodIP, podflags.DefaultHTTPPort),
		HTTPSAddress:      fmt.Sprintf("$(%s):%d", podflags.EnvPodIP, podflags.DefaultHTTPSPort),
		TLSSecret:         in.TLSSecret,
		HealthAddress:     fmt.Sprintf("$(%s):%d", podflags.EnvPodIP, podflags.DefaultHealthPort),
		SnapshotNamespace: in.Namespace,
		SnapshotConfigMap: in.ConfigMap,
		SnapshotFile:      podflags.DefaultSnapshotFile,
		SnapshotPartsDir:  podflags.DefaultSnapshotPartsDir,
		Instance:          in.GatewayConfig.Name,
	}
	d := in.GatewayConfig.Spec.Defaults
	if d == nil {
		return f
	}
	dur := func(v *metav1.Duration) time.Duration {
		if v == nil {
			return 0
		}
		return v.Duration
	}
	f.UpstreamConnectTimeout = dur(d.UpstreamConnectTimeout)
	f.UpstreamReadTimeout = dur(d.UpstreamReadTimeout)
	f.UpstreamSendTimeout = dur(d.UpstreamSendTimeout)
	f.ClientIdleTimeout = dur(d.ClientIdleTimeout)
	f.ClientHeaderTimeout = dur(d.ClientHeaderTimeout)
	if d.UpstreamRetries != nil {
		f.UpstreamRetries = int(*d.UpstreamRetries)
		if f.UpstreamRetries == 0 {
			f.UpstreamRetries = -1 // podflags: 0 means "default", negative means none
		}
	}
	if d.MaxBodySize != nil {
		f.MaxBodyBytes = d.MaxBodySize.Value()
	}
	f.TrustedProxies = strings.Join(d.TrustedProxies, ",")
	if d.HTTP2 != nil && !*d.HTTP2 {
		f.DisableHTTP2 = true
	}
	if ph := d.PassiveHealth; ph != nil {
		if ph.MaxFailures != nil {
			f.PassiveMaxFailures = int(*ph.MaxFailures)
			if f.PassiveMaxFailures == 0 {
				f.PassiveMaxFailures = -1 // gatewaypod: <0 is off, 0 its default
			}
		}
		if ph.Ejection != nil && ph.Ejection.Duration > 0 {
			f.PassiveEjection = ph.Ejection.Duration
		}
		if ph.MaxEjection != nil && ph.MaxEjection.Duration > 0 {
			f.PassiveMaxEjection = ph.MaxEjection.Duration
		}
	}
	switch d.HTTP1Server {
	case "Portico":
		f.HTTP1Server = podflags.HTTP1ServerPortico
	case "Stdlib":
		f.HTTP1Server = podflags.HTTP1ServerStdlib
	}
	if a := d.AccessLog; a != nil && a.Mode != "" && a.Mode != "Off" {
		f.AccessLog = strings.ToLower(a.Mode)
		if a.SampleRate != "" {
			// The API pattern admits only decimals in (0, 1].
			f.AccessLogSampleRate, _ = strconv.ParseFloat(a.SampleRate, 64)
		}
		f.AccessLogFields = strings.Join(a.Fields, ",")
	}
	return f
}

// ServiceAccount is the identity of the gateway pods.
func (in Instance) ServiceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: in.meta(in.Name),
	}
}

// Role grants the gateway pods exactly what they use: read their own
// snapshot ConfigMaps (head and every possible part, a fixed list) and TLS
// Secret, and annotate their own Pod with the version served. Pods cannot
// be narrowed by name because pod names are generated.
func (in Instance) Role() *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: in.meta(in.Name),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: append([]string{in.ConfigMap}, in.PartConfigMaps()...), Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{in.TLSSecret}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "patch"}},
		},
	}
}

// RoleBinding binds Role to ServiceAccount.
func (in Instance) RoleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: in.meta(in.Name),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: in.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: in.Name, Namespace: in.Namespace}},
	}
}

// ConfigMap carries the encoded snapshot. Key material never goes here.
func (in Instance) ConfigMapWith(encoded []byte, version string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: in.meta(in.ConfigMap),
		Data:       map[string]string{snapshot.ConfigMapKey: string(encoded)},
	}
	cm.Annotations = map[string]string{podflags.AnnotationSnapshotVersion: version}
	return cm
}

// TLSSecretWith carries the certificates and keys of the snapshot, keyed
// by snapshot.CertificateDataKeys; it exists (maybe empty) for every instance.
func (in Instance) TLSSecretWith(data map[string][]byte) *corev1.Secret {
	if data == nil {
		data = map[string][]byte{}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: in.meta(in.TLSSecret),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// ServiceType is the effective Service type: spec.service.type, else the
// traffic profile's default.
func (in Instance) ServiceType() corev1.ServiceType {
	gc := in.GatewayConfig
	if gc.Spec.Service != nil && gc.Spec.Service.Type != "" {
		return gc.Spec.Service.Type
	}
	if gc.Spec.TrafficType == gatewayv1alpha1.TrafficEastWest {
		return corev1.ServiceTypeClusterIP
	}
	return corev1.ServiceTypeLoadBalancer
}

// Service exposes the gateway pods.
func (in Instance) Service() *corev1.Service {
	gc := in.GatewayConfig
	port, httpsPort := int32(80), int32(443)
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: in.meta(in.Name),
		Spec: corev1.ServiceSpec{
			Type:     in.ServiceType(),
			Selector: in.SelectorLabels(),
		},
	}
	if s := gc.Spec.Service; s != nil {
		if s.HTTPPort != 0 {
			port = s.HTTPPort
		}
		if s.HTTPSPort != 0 {
			httpsPort = s.HTTPSPort
		}
		if len(s.Annotations) > 0 {
			svc.Annotations = s.Annotations
		}
	}
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
		{Name: "https", Port: httpsPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("https")},
	}
	if s := gc.Spec.Service; s != nil && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		svc.Spec.LoadBalancerClass = s.LoadBalancerClass
		svc.Spec.LoadBalancerSourceRanges = s.LoadBalancerSourceRanges
	}
	// Client source IPs survive only without the extra node hop.
	if t := svc.Spec.Type; t == corev1.ServiceTypeLoadBalancer || t == corev1.ServiceTypeNodePort {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return svc
}

// Replicas is the desired pod count, or nil when an HPA owns it (so that
// server-side apply leaves the HPA's value alone).
func (in Instance) Replicas() *int32 {
	if in.GatewayConfig.Spec.Autoscaling != nil {
		return nil
	}
	return ptr.To(ptr.Deref(in.GatewayConfig.Spec.Replicas, 2))
}

// defaultResources are requests only: a limit on a proxy's CPU adds
// throttling latency under bursts.
var defaultResources = corev1.ResourceRequirements{Requests: corev1.ResourceList{
	corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
}}

// Deployment runs the gateway pods.
func (in Instance) Deployment(p Params) *appsv1.Deployment {
	gc := in.GatewayConfig
	image := gc.Spec.Image
	if image == "" {
		image = p.Image
	}
	pullPolicy := gc.Spec.ImagePullPolicy
	if pullPolicy == "" {
		pullPolicy = corev1.PullIfNotPresent
	}
	c := corev1.Container{
		Name:            containerName,
		Image:           image,
		ImagePullPolicy: pullPolicy,
		Command:         []string{GatewayCommand},
		Args:            in.Flags().Args(),
		Env: []corev1.EnvVar{
			{Name: podflags.EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: podflags.EnvPodNamespace, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: podflags.EnvPodIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: podflags.DefaultHTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "https", ContainerPort: podflags.DefaultHTTPSPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: podflags.DefaultHealthPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("health")}},
			PeriodSeconds: 2},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("health")}},
			PeriodSeconds: 10, FailureThreshold: 3},
		Resources: defaultResources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: snapshotVolume, MountPath: podflags.DefaultSnapshotDir, ReadOnly: true},
			{Name: partsVolume, MountPath: podflags.DefaultSnapshotPartsDir, ReadOnly: true},
			{Name: tlsVolume, MountPath: TLSDir, ReadOnly: true},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if gc.Spec.Resources != nil {
		c.Resources = *gc.Spec.Resources
	}
	podLabels := maps.Clone(gc.Spec.PodLabels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, in.Labels()) // ours win: the selector must keep matching
	podSpec := corev1.PodSpec{
		ServiceAccountName: in.Name,
		Containers:         []corev1.Container{c},
		NodeSelector:       gc.Spec.NodeSelector,
		Tolerations:        gc.Spec.Tolerations,
		PriorityClassName:  gc.Spec.PriorityClassName,
		SecurityContext: &corev1.PodSecurityContext{
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			Sysctls:        in.sysctls(),
		},
		Volumes: []corev1.Volume{
			{Name: snapshotVolume, VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: in.ConfigMap}, Optional: ptr.To(true)},
			}},
			in.partsVolume(),
			{Name: tlsVolume, VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: in.TLSSecret, Optional: ptr.To(true)},
			}},
		},
	}
	if gc.Spec.Affinity != nil {
		podSpec.Affinity = gc.Spec.Affinity
	} else {
		podSpec.Affinity, podSpec.TopologySpreadConstraints = in.defaultSpread()
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: in.meta(in.Name),
		Spec: appsv1.DeploymentSpec{
			Replicas: in.Replicas(),
			Selector: &metav1.LabelSelector{MatchLabels: in.SelectorLabels()},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: gc.Spec.PodAnnotations},
				Spec:       podSpec,
			},
		},
	}
}

// defaultSpread prefers one gateway pod per node, and spreads pods evenly
// over zones and nodes without blocking scheduling when that is impossible.
func (in Instance) defaultSpread() (*corev1.Affinity, []corev1.TopologySpreadConstraint) {
	sel := &metav1.LabelSelector{MatchLabels: in.SelectorLabels()}
	aff := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight:          100,
			PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: sel, TopologyKey: corev1.LabelHostname},
		}},
	}}
	var spread []corev1.TopologySpreadConstraint
	for _, key := range []string{corev1.LabelTopologyZone, corev1.LabelHostname} {
		spread = append(spread, corev1.TopologySpreadConstraint{
			MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: sel,
		})
	}
	return aff, spread
}

func (in Instance) sysctls() []corev1.Sysctl {
	t := in.GatewayConfig.Spec.Tuning
	if t == nil {
		return nil
	}
	var out []corev1.Sysctl
	if t.Somaxconn != nil {
		out = append(out, corev1.Sysctl{Name: "net.core.somaxconn", Value: strconv.Itoa(int(*t.Somaxconn))})
	}
	if t.IPLocalPortRange != "" {
		out = append(out, corev1.Sysctl{Name: "net.ipv4.ip_local_port_range", Value: t.IPLocalPortRange})
	}
	if t.TCPTwReuse != nil {
		v := "0"
		if *t.TCPTwReuse {
			v = "1"
		}
		out = append(out, corev1.Sysctl{Name: "net.ipv4.tcp_tw_reuse", Value: v})
	}
	return out
}

// PodDisruptionBudget keeps gateway capacity during node drains, or is nil
// when none is wanted (a single replica without an explicit budget).
func (in Instance) PodDisruptionBudget() *policyv1.PodDisruptionBudget {
	gc := in.GatewayConfig
	pdb := &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: in.meta(in.Name),
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: in.SelectorLabels()}},
	}
	switch {
	case gc.Spec.PodDisruptionBudget != nil:
		pdb.Spec.MinAvailable = gc.Spec.PodDisruptionBudget.MinAvailable
		pdb.Spec.MaxUnavailable = gc.Spec.PodDisruptionBudget.MaxUnavailable
	case gc.Spec.Autoscaling != nil || ptr.Deref(gc.Spec.Replicas, 2) > 1:
		pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	default:
		return nil
	}
	return pdb
}

// HorizontalPodAutoscaler scales the Deployment on CPU, or is nil.
func (in Instance) HorizontalPodAutoscaler() *autoscalingv2.HorizontalPodAutoscaler {
	a := in.GatewayConfig.Spec.Autoscaling
	if a == nil {
		return nil
	}
	minReplicas := a.MinReplicas
	if minReplicas == 0 {
		minReplicas = 2
	}
	target := a.TargetCPUUtilizationPercentage
	if target == 0 {
		target = 70
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: in.meta(in.Name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: in.Name},
			MinReplicas:    ptr.To(minReplicas),
			MaxReplicas:    a.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)}},
			}},
		},
	}
}
