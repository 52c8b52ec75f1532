package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ControllerName is the value of IngressClass spec.controller that binds an
// IngressClass to Portico.
const ControllerName = "portico.dev/ingress-controller"

// TrafficType says which kind of traffic an instance carries. North-south and
// east-west traffic never share an instance, so an overload or fault in one
// cannot reach the other.
// +kubebuilder:validation:Enum=NorthSouth;EastWest
type TrafficType string

const (
	// TrafficNorthSouth is traffic entering the cluster; the instance gets an
	// external (LoadBalancer) Service by default.
	TrafficNorthSouth TrafficType = "NorthSouth"
	// TrafficEastWest is traffic between workloads inside the cluster; the
	// instance gets a ClusterIP Service by default.
	TrafficEastWest TrafficType = "EastWest"
)

// GatewayConfigSpec describes one gateway instance.
// +kubebuilder:validation:XValidation:rule="!(self.trafficType == 'EastWest' && has(self.service) && has(self.service.type) && self.service.type == 'LoadBalancer')",message="an EastWest instance cannot use a LoadBalancer Service: east-west traffic must stay inside the cluster"
// +kubebuilder:validation:XValidation:rule="!(has(self.service) && has(self.service.httpPort) && has(self.service.httpsPort) && self.service.httpPort == self.service.httpsPort)",message="service.httpPort and service.httpsPort must differ"
// +kubebuilder:validation:XValidation:rule="!(has(self.service) && has(self.service.loadBalancerClass) && has(self.service.type) && self.service.type != 'LoadBalancer')",message="service.loadBalancerClass needs service.type LoadBalancer"
type GatewayConfigSpec struct {
	// trafficType picks the instance profile: NorthSouth (external Service)
	// or EastWest (ClusterIP Service). It cannot change after creation.
	// +kubebuilder:default=NorthSouth
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="trafficType is immutable"
	// +optional
	TrafficType TrafficType `json:"trafficType,omitempty"`

	// namespace holds the instance's Deployment, Service, ServiceAccount,
	// RBAC and snapshot ConfigMap. Empty means the operator's namespace. It
	// cannot change after creation.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable"
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// replicas is the number of gateway pods.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// image is the gatewaypod container image. Empty means the image of the
	// operator's own version.
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the gatewaypod container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of the gatewaypod container. Default: requests of 100m CPU
	// and 128Mi memory, no limits.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// ingressNamespaceSelector selects the namespaces whose Ingresses this
	// instance serves, so one team's Ingresses cannot feed another team's
	// instance. Empty means all namespaces.
	// +optional
	IngressNamespaceSelector *metav1.LabelSelector `json:"ingressNamespaceSelector,omitempty"`

	// autoscaling adds a HorizontalPodAutoscaler; replicas is then left to it.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// nodeSelector of the gateway pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the gateway pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity of the gateway pods. Default: prefer spreading pods over nodes
	// (pod anti-affinity) plus topology spread over zones and nodes.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// priorityClassName of the gateway pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// podDisruptionBudget of the gateway pods. Default: maxUnavailable 1 when
	// more than one replica runs; none for a single replica (it would block
	// node drains).
	// +optional
	PodDisruptionBudget *PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitempty"`

	// podLabels are added to the gateway pods (selector labels win).
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// podAnnotations are added to the gateway pods.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// service configures the instance's Service.
	// +optional
	Service *ServiceSpec `json:"service,omitempty"`

	// tuning sets kernel parameters on the gateway pods.
	// +optional
	Tuning *TuningSpec `json:"tuning,omitempty"`

	// defaults are instance-wide settings for every route of the instance.
	// +optional
	Defaults *DefaultsSpec `json:"defaults,omitempty"`

	// paused stops reconciling the owned objects (for maintenance); status
	// still reports what is observed and shows the pause.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// +kubebuilder:validation:XValidation:rule="!has(self.trustedProxies) || self.trustedProxies.all(c, isCIDR(c) || isIP(c))",message="defaults.trustedProxies must hold CIDRs or IP addresses"
// DefaultsSpec holds instance-wide settings. They become gatewaypod
// command-line flags, so changing one rolls the gateway pods (gracefully);
// per-route settings from annotations live in the snapshot instead.
type DefaultsSpec struct {
	// upstreamConnectTimeout bounds the TCP connect to an endpoint. Default 5s.
	// +optional
	UpstreamConnectTimeout *metav1.Duration `json:"upstreamConnectTimeout,omitempty"`
	// upstreamReadTimeout bounds the wait for a response header and between
	// two reads of a response body. Default 60s.
	// +optional
	UpstreamReadTimeout *metav1.Duration `json:"upstreamReadTimeout,omitempty"`
	// upstreamSendTimeout bounds each write of a request body. Default 60s.
	// +optional
	UpstreamSendTimeout *metav1.Duration `json:"upstreamSendTimeout,omitempty"`
	// upstreamRetries is how many other endpoints an idempotent request is
	// tried on when a connection fails. Default 1.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	UpstreamRetries *int32 `json:"upstreamRetries,omitempty"`
	// clientIdleTimeout closes idle client keep-alive connections. Default 120s.
	// +optional
	ClientIdleTimeout *metav1.Duration `json:"clientIdleTimeout,omitempty"`
	// clientHeaderTimeout bounds reading a client's request header (slowloris). Default 10s.
	// +optional
	ClientHeaderTimeout *metav1.Duration `json:"clientHeaderTimeout,omitempty"`
	// maxBodySize refuses larger request bodies with 413. Default: no limit.
	// The proxy-body-size annotation overrides it per route.
	// +optional
	MaxBodySize *resource.Quantity `json:"maxBodySize,omitempty"`
	// trustedProxies are CIDRs (a load balancer in front of the pods) whose
	// X-Forwarded-* and X-Real-IP headers are believed. Default: none.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	TrustedProxies []string `json:"trustedProxies,omitempty"`

	// accessLog configures the gateway pods' JSON access log on stdout.
	// +optional
	AccessLog *AccessLogSpec `json:"accessLog,omitempty"`
	// http2 offers HTTP/2 to TLS clients through ALPN. Default true.
	// +optional
	HTTP2 *bool `json:"http2,omitempty"`
	// http1Server picks the HTTP/1.1 server of the plain listener: Portico
	// (gatewaypod's own loop for requests without a body, net/http for
	// everything else; the default) or Stdlib (net/http for every
	// connection).
	// +kubebuilder:validation:Enum=Portico;Stdlib
	// +optional
	HTTP1Server string `json:"http1Server,omitempty"`
	// passiveHealth tunes how the gateway pods eject an endpoint that
	// fails requests (connect errors or 5xx in a row) and for how long.
	// +optional
	PassiveHealth *PassiveHealthSpec `json:"passiveHealth,omitempty"`
	// tlsCertificate is a kubernetes.io/tls Secret served to TLS clients
	// whose server name matches no Ingress host. Without it the first
	// Ingress certificate is the fallback.
	// +optional
	TLSCertificate *SecretRef `json:"tlsCertificate,omitempty"`
	// defaultBackend serves requests that match no host of the instance.
	// It takes precedence over an Ingress's spec.defaultBackend for
	// unmatched hosts; without either, the gateway answers 404.
	// +optional
	DefaultBackend *DefaultBackendRef `json:"defaultBackend,omitempty"`
}

// PassiveHealthSpec tunes passive health checking: an endpoint that fails
// maxFailures requests in a row gets no traffic for ejection, doubled on
// each further ejection up to maxEjection.
type PassiveHealthSpec struct {
	// maxFailures is the number of consecutive connect errors or 5xx
	// answers that eject an endpoint; 0 turns passive health off.
	// Default 5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxFailures *int32 `json:"maxFailures,omitempty"`
	// ejection is the first ejection time. Default 10s.
	// +optional
	Ejection *metav1.Duration `json:"ejection,omitempty"`
	// maxEjection is the longest ejection time. Default 10 x ejection.
	// +optional
	MaxEjection *metav1.Duration `json:"maxEjection,omitempty"`
}

// AccessLogSpec configures the access log. Query strings are logged only
// when the query field is chosen (they often carry tokens); request headers
// other than the user agent are never logged.
// +kubebuilder:validation:XValidation:rule="!has(self.sampleRate) || self.mode == 'Sampled'",message="accessLog.sampleRate needs accessLog.mode Sampled"
type AccessLogSpec struct {
	// mode is Off, Sampled (a fraction of requests) or Full.
	// +kubebuilder:validation:Enum=Off;Sampled;Full
	// +kubebuilder:default=Off
	// +optional
	Mode string `json:"mode,omitempty"`
	// sampleRate is the logged fraction in Sampled mode, a decimal in
	// (0, 1] such as "0.01". Default "0.01".
	// +kubebuilder:validation:Pattern=`^(0?\.[0-9]*[1-9][0-9]*|1(\.0+)?)$`
	// +optional
	SampleRate string `json:"sampleRate,omitempty"`
	// fields are the JSON keys of each line, in order. Default: time, remote,
	// method, host, path, status, bytes, duration_ms, backend, request_id.
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:Enum=time;remote;method;host;path;query;status;bytes;duration_ms;backend;endpoint;request_id;user_agent;protocol
	Fields []string `json:"fields,omitempty"`
}

// SecretRef names a Secret in a namespace.
type SecretRef struct {
	// namespace of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// DefaultBackendRef names a Service port in a namespace.
type DefaultBackendRef struct {
	// namespace of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`
	// service is the Service name and port, as in an Ingress backend.
	// +required
	Service networkingv1.IngressServiceBackend `json:"service"`
}

// AutoscalingSpec configures a HorizontalPodAutoscaler (autoscaling/v2).
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must not exceed autoscaling.maxReplicas"
type AutoscalingSpec struct {
	// minReplicas is the lower bound.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas int32 `json:"minReplicas,omitempty"`
	// maxReplicas is the upper bound.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +required
	MaxReplicas int32 `json:"maxReplicas"`
	// targetCPUUtilizationPercentage is the average CPU utilisation to keep.
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	TargetCPUUtilizationPercentage int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// PodDisruptionBudgetSpec sets exactly one of minAvailable and maxUnavailable.
// +kubebuilder:validation:XValidation:rule="has(self.minAvailable) != has(self.maxUnavailable)",message="set exactly one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable"
type PodDisruptionBudgetSpec struct {
	// minAvailable pods during voluntary disruptions (number or percentage).
	// +optional
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`
	// maxUnavailable pods during voluntary disruptions (number or percentage).
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// TuningSpec holds the kernel settings recommended for gateways. They are
// set as pod securityContext.sysctls. net.ipv4.tcp_tw_reuse and
// net.core.somaxconn are "unsafe" sysctls: the kubelet must allow them
// (--allowed-unsafe-sysctls), otherwise pods fail with SysctlForbidden and
// the GatewayConfig reports it in its Degraded condition.
type TuningSpec struct {
	// somaxconn sets net.core.somaxconn, the accept queue length.
	// +kubebuilder:validation:Minimum=128
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Somaxconn *int32 `json:"somaxconn,omitempty"`
	// ipLocalPortRange sets net.ipv4.ip_local_port_range, e.g. "1024 65000",
	// the ports used for upstream connections.
	// +kubebuilder:validation:Pattern=`^[0-9]{1,5} [0-9]{1,5}$`
	// +optional
	IPLocalPortRange string `json:"ipLocalPortRange,omitempty"`
	// tcpTwReuse sets net.ipv4.tcp_tw_reuse, reusing TIME_WAIT sockets for
	// new upstream connections.
	// +optional
	TCPTwReuse *bool `json:"tcpTwReuse,omitempty"`
}

// ServiceSpec configures the Service in front of the gateway pods.
type ServiceSpec struct {
	// type of the Service. Default: LoadBalancer for NorthSouth, ClusterIP for EastWest.
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`

	// annotations added to the Service, e.g. cloud load-balancer settings.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// httpPort is the Service port for plain HTTP.
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	HTTPPort int32 `json:"httpPort,omitempty"`

	// httpsPort is the Service port for TLS.
	// +kubebuilder:default=443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	HTTPSPort int32 `json:"httpsPort,omitempty"`

	// loadBalancerClass selects the load-balancer implementation; it cannot
	// change once set (a Service rule).
	// +optional
	LoadBalancerClass *string `json:"loadBalancerClass,omitempty"`

	// loadBalancerSourceRanges restricts client CIDRs at the load balancer.
	// +optional
	// +listType=atomic
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
}

// Phase is a one-word summary of the instance, derived from its conditions.
// +kubebuilder:validation:Enum=Pending;Running;Listening;Failed
type Phase string

const (
	// PhasePending means objects are being created or no pod is available yet.
	PhasePending Phase = "Pending"
	// PhaseRunning means the Deployment has at least one available replica.
	PhaseRunning Phase = "Running"
	// PhaseListening means running, bound by an IngressClass, and ready pods
	// serve the current snapshot.
	PhaseListening Phase = "Listening"
	// PhaseFailed means the spec cannot be realised; message says why.
	PhaseFailed Phase = "Failed"
)

// Condition types of a GatewayConfig.
const (
	// GatewayConfigConditionAccepted is True when the spec can be realised.
	// Reasons: Accepted, Paused (True); NamespaceNotFound, Conflict (False).
	GatewayConfigConditionAccepted = "Accepted"
	// GatewayConfigConditionAvailable is True when the Deployment has at least
	// one available replica. Reasons: MinimumReplicasAvailable (True);
	// DeploymentUnavailable, Paused (False).
	GatewayConfigConditionAvailable = "Available"
	// GatewayConfigConditionProgressing is True while a rollout of the
	// gateway Deployment is under way. Reasons: RollingOut (True);
	// RolloutComplete, ProgressDeadlineExceeded, Paused (False).
	GatewayConfigConditionProgressing = "Progressing"
	// GatewayConfigConditionDegraded is True when pods are failing, or a new
	// snapshot cannot be published, for a reason the user must fix. Reasons:
	// ImagePullFailed, SysctlForbidden, ProgressDeadlineExceeded, PodsFailing,
	// SnapshotInvalid, SnapshotTooLarge, SnapshotRefusedByPods (True);
	// AsExpected (False).
	GatewayConfigConditionDegraded = "Degraded"
	// GatewayConfigConditionProgrammed is True when at least one ready pod
	// reports the current snapshot version and an IngressClass binds the
	// instance. Reasons: Programmed (True); NoIngressClass, Pending (False).
	GatewayConfigConditionProgrammed = "Programmed"
)

// Condition reasons of a GatewayConfig.
const (
	GatewayConfigReasonAccepted                 = "Accepted"
	GatewayConfigReasonNamespaceNotFound        = "NamespaceNotFound"
	GatewayConfigReasonMinimumReplicasAvailable = "MinimumReplicasAvailable"
	GatewayConfigReasonDeploymentUnavailable    = "DeploymentUnavailable"
	GatewayConfigReasonProgrammed               = "Programmed"
	GatewayConfigReasonNoIngressClass           = "NoIngressClass"
	GatewayConfigReasonPending                  = "Pending"
	GatewayConfigReasonConflict                 = "Conflict"
	GatewayConfigReasonPaused                   = "Paused"
	GatewayConfigReasonRollingOut               = "RollingOut"
	GatewayConfigReasonRolloutComplete          = "RolloutComplete"
	GatewayConfigReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	GatewayConfigReasonImagePullFailed          = "ImagePullFailed"
	GatewayConfigReasonSysctlForbidden          = "SysctlForbidden"
	GatewayConfigReasonAsExpected               = "AsExpected"
	// GatewayConfigReasonSnapshotInvalid: the compiled snapshot fails the
	// validation the gateway pods run; it is not published, the last good
	// one stays.
	GatewayConfigReasonSnapshotInvalid = "SnapshotInvalid"
	// GatewayConfigReasonSnapshotTooLarge: the encoded snapshot needs more
	// than the maximum number of ConfigMaps; it is not published.
	GatewayConfigReasonSnapshotTooLarge = "SnapshotTooLarge"
	// GatewayConfigReasonSnapshotRefusedByPods: gateway pods refused the
	// snapshot payload in the ConfigMap (e.g. one written by hand) and keep
	// serving their last good snapshot; the operator writes the published
	// snapshot back unless the instance is paused.
	GatewayConfigReasonSnapshotRefusedByPods = "SnapshotRefusedByPods"
)

// GatewayConfigStatus is the observed state of an instance.
type GatewayConfigStatus struct {
	// phase summarises the conditions: Pending, Running, Listening or Failed.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// message explains the phase, in particular what to fix when Failed.
	// +optional
	Message string `json:"message,omitempty"`

	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of gateway pods the Deployment wants.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of ready gateway pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// addresses are where clients reach the instance: the load balancer's
	// IPs or hostnames, else the Service's cluster IP.
	// +optional
	// +listType=atomic
	Addresses []string `json:"addresses,omitempty"`

	// ingressClasses are the IngressClasses whose spec.parameters name this instance.
	// +optional
	// +listType=set
	IngressClasses []string `json:"ingressClasses,omitempty"`

	// snapshot describes the current compiled snapshot and who serves it.
	// +optional
	Snapshot SnapshotStatus `json:"snapshot,omitempty"`

	// conditions: Accepted, Available, Programmed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SnapshotStatus describes the current snapshot of an instance.
type SnapshotStatus struct {
	// version is the content version of the snapshot in the instance's ConfigMap.
	// +optional
	Version string `json:"version,omitempty"`
	// acceptedIngresses is the number of Ingresses in the snapshot.
	// +optional
	AcceptedIngresses int32 `json:"acceptedIngresses,omitempty"`
	// rejectedIngresses is the number of Ingresses of the bound classes left
	// out; each has a Warning Event saying why.
	// +optional
	RejectedIngresses int32 `json:"rejectedIngresses,omitempty"`
	// servingReplicas is the number of ready gateway pods serving version.
	// +optional
	ServingReplicas int32 `json:"servingReplicas,omitempty"`
	// refusingReplicas is the number of gateway pods that refused the last
	// snapshot payload they were given (it did not decode or validate) and
	// keep serving their last good snapshot; the Degraded condition names
	// one pod's reason. It drops back as pods receive a valid payload.
	// +optional
	RefusingReplicas int32 `json:"refusingReplicas,omitempty"`
}

// GatewayConfig is one gateway instance: a fleet of gatewaypod proxies, their
// Service, RBAC and snapshot, bound to Ingresses through an IngressClass whose
// spec.parameters names it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=gwc,categories=portico
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Traffic",type=string,JSONPath=`.spec.trafficType`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.addresses[0]`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GatewayConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired instance.
	// +optional
	Spec GatewayConfigSpec `json:"spec,omitempty"`
	// status is the observed instance.
	// +optional
	Status GatewayConfigStatus `json:"status,omitempty"`
}

// GatewayConfigList is a list of GatewayConfig.
// +kubebuilder:object:root=true
type GatewayConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GatewayConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GatewayConfig{}, &GatewayConfigList{})
}
