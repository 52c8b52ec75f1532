package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	// resources of the gatewaypod container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// service configures the instance's Service.
	// +optional
	Service *ServiceSpec `json:"service,omitempty"`
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
	// Reasons: Accepted (True); NamespaceNotFound, InvalidSpec (False).
	GatewayConfigConditionAccepted = "Accepted"
	// GatewayConfigConditionAvailable is True when the Deployment has at least
	// one available replica. Reasons: MinimumReplicasAvailable (True);
	// DeploymentUnavailable, Paused (False).
	GatewayConfigConditionAvailable = "Available"
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

	// replicas is the number of gateway pods the Deployment has.
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
