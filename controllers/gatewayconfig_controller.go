// Package controllers reconciles GatewayConfigs into gateway fleets and
// Ingresses into their snapshots. It does the I/O and status only: the
// translation lives in controllers/compile and the desired objects in
// controllers/render.
package controllers

import (
	"context"
	"fmt"
	"net"
	gslices "slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gatewayv1alpha1 "github.com/portico-dev/portico/api/v1alpha1"
	"github.com/portico-dev/portico/controllers/compile"
	"github.com/portico-dev/portico/controllers/render"
	"github.com/portico-dev/portico/gatewaypod/podflags"
)

// FieldOwner is the server-side apply field manager of every object the
// operator writes.
const FieldOwner = "portico-operator"

// Event reasons.
const (
	EventReasonCreated           = "Created"
	EventReasonUpdated           = "Updated"
	EventReasonDeleted           = "Deleted"
	EventReasonApplyFailed       = "ApplyFailed"
	EventReasonConflict          = "Conflict"
	EventReasonNamespaceNotFound = "NamespaceNotFound"
	EventReasonSnapshotPublished = "SnapshotPublished"
	EventReasonIngressRejected   = "IngressRejected"
	EventReasonIngressAccepted   = "IngressAccepted"
)

// GatewayConfigReconciler turns one GatewayConfig into its fleet, compiles
// the Ingresses of its IngressClasses into its snapshot, and reports status
// on the GatewayConfig and on each Ingress.
type GatewayConfigReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Params   render.Params
	// APIReader reads Secrets directly: the cache holds only their
	// metadata, so key material is not kept in the operator's memory.
	APIReader client.Reader
	// MinPublishInterval bounds snapshot writes per instance: bursts of
	// Ingress or endpoint changes coalesce into one write per interval.
	// Zero disables the bound (tests that call Reconcile by hand).
	MinPublishInterval time.Duration
	// Clock is injectable for tests; nil means the real clock.
	Clock clock.PassiveClock
	// Compile turns the gathered inputs into the snapshot; nil means
	// compile.Compile. Tests wrap it to make a snapshot fail validation.
	Compile func(compile.Inputs) compile.Output

	lastPublish sync.Map // GatewayConfig name -> time.Time of the last new snapshot
	published   sync.Map // GatewayConfig name -> the last version this process published (see newPublish)

	// reported remembers the last compile outcome per Ingress so that an
	// Event is emitted once per change, not once per reconcile.
	reported sync.Map // types.NamespacedName -> string
}

// +kubebuilder:rbac:groups=gateway.portico.dev,resources=gatewayconfigs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=gateway.portico.dev,resources=gatewayconfigs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=gateway.portico.dev,resources=gatewayconfigs/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts;configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses;ingressclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one instance to its desired state and reports status.
func (r *GatewayConfigReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)
	gc := &gatewayv1alpha1.GatewayConfig{}
	// The status is computed against the stored object, not the cache: a
	// cached copy that lags our own last status write would make the merge
	// patch below leave a field (say phase) at a value no reconcile chose.
	reader := client.Reader(r.Client)
	if r.APIReader != nil {
		reader = r.APIReader
	}
	if err := reader.Get(ctx, req.NamespacedName, gc); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.Name)
			r.published.Delete(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owned objects go with it through garbage collection
	}
	inst := render.NewInstance(gc, r.Params)
	before := gc.DeepCopy()
	facts := statusFacts{namespace: inst.Namespace}

	// One status write per reconcile, whatever path returns.
	defer func() {
		setStatus(gc, facts)
		recordStatusMetrics(gc)
		if msg, ok := podRefusalChanged(before, gc); ok {
			logger.Error(nil, "Gateway pods refused the snapshot payload", "gatewayConfig", klog.KObj(gc), "message", msg)
			r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, EventReasonSnapshotRefusedByPods, "Serve", "%s", msg)
		}
		if equality.Semantic.DeepEqual(before.Status, gc.Status) {
			return
		}
		// Optimistic lock: a write since our read fails with a conflict and
		// the request is retried with fresh state, instead of merging.
		if err := r.Status().Patch(ctx, gc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && retErr == nil {
			retErr = fmt.Errorf("failed to patch status of GatewayConfig %s: %w", gc.Name, err)
		}
	}()

	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: inst.Namespace}, ns); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		facts.namespaceMissing = true
		if before.Status.Phase != gatewayv1alpha1.PhaseFailed {
			r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, EventReasonNamespaceNotFound, "Reconcile",
				"namespace %q does not exist; create it or change spec.namespace", inst.Namespace)
		}
		return ctrl.Result{}, nil // the Namespace watch brings us back
	}

	out, err := r.compile(ctx, gc)
	if err != nil {
		return ctrl.Result{}, err
	}
	facts.classes = out.Classes
	facts.snapshotVersion = out.Snapshot.Version
	r.instanceWarnings(gc, out.Warnings)
	for _, res := range out.Results {
		if res.Accepted {
			facts.accepted++
		} else {
			facts.rejected++
		}
	}

	if wait := r.publishWait(gc.Name, before.Status.Snapshot.Version, out.Snapshot.Version); wait > 0 && !gc.Spec.Paused {
		// Too soon after the last write: keep the published version, come
		// back when the interval is over. Later changes fold into that write.
		facts.keepPublished(before)
		if err := r.observe(ctx, inst, &facts); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	if gc.Spec.Paused {
		facts.paused = true
		facts.keepPublished(before) // nothing new is published while paused
	} else {
		snapCMs, refused := snapshotConfigMaps(inst, out, r.Params.SnapshotPartSize)
		if refused != nil {
			// Never written: the ConfigMaps keep the last good snapshot.
			facts.snapshotProblem = refused
			// The version stays the published one; the counts stay the
			// compile's, so the Degraded refusal and the counts that caused
			// it are seen together.
			facts.snapshotVersion = before.Status.Snapshot.Version
			if newRefusal(before, refused) {
				metricSnapshotRefused.WithLabelValues(gc.Name, refused.reason).Inc()
				logger.Error(nil, "Snapshot refused, keeping the last good one", "gatewayConfig", klog.KObj(gc),
					"version", out.Snapshot.Version, "publishedVersion", before.Status.Snapshot.Version, "reason", refused.reason, "message", refused.message)
				r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, EventReasonSnapshotRefused, "Publish", "%s", refused.message)
			}
		}
		conflict, err := r.applyAll(ctx, gc, inst, out, snapCMs)
		if err != nil {
			return ctrl.Result{}, err
		}
		if conflict != "" {
			facts.conflict = conflict
			if !hasReason(before.Status.Conditions, gatewayv1alpha1.GatewayConfigConditionAccepted, gatewayv1alpha1.GatewayConfigReasonConflict) {
				r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, EventReasonConflict, "Reconcile", "%s", conflict)
			}
			return ctrl.Result{}, nil
		}
		if refused == nil {
			metricSnapshotBytes.WithLabelValues(gc.Name).Set(float64(len(out.Encoded)))
			metricSnapshotConfigMaps.WithLabelValues(gc.Name).Set(float64(len(snapCMs)))
		}
		if refused == nil && before.Status.Snapshot.Version != out.Snapshot.Version && r.newPublish(gc.Name, out.Snapshot.Version) {
			r.lastPublish.Store(gc.Name, r.now())
			metricPublishes.WithLabelValues(gc.Name).Inc()
			logger.Info("Published snapshot", "gatewayConfig", klog.KObj(gc), "version", out.Snapshot.Version,
				"hosts", len(out.Snapshot.Hosts), "accepted", facts.accepted, "rejected", facts.rejected,
				"bytes", len(out.Encoded), "configMaps", len(snapCMs))
			r.Recorder.Eventf(gc, nil, corev1.EventTypeNormal, EventReasonSnapshotPublished, "Publish",
				"snapshot %s published to ConfigMap %s/%s (%d hosts, %d Ingresses accepted, %d rejected; %d bytes in %d ConfigMaps)",
				out.Snapshot.Version, inst.Namespace, inst.ConfigMap, len(out.Snapshot.Hosts), facts.accepted, facts.rejected,
				len(out.Encoded), len(snapCMs))
		}
	}

	if err := r.observe(ctx, inst, &facts); err != nil {
		return ctrl.Result{}, err
	}
	// A refused snapshot is not what the pods serve: its per-Ingress
	// outcomes wait for a snapshot that is published.
	if !gc.Spec.Paused && facts.snapshotProblem == nil {
		if err := r.reportIngresses(ctx, out.Results, facts.addresses); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

func (r *GatewayConfigReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// publishWait is how long to hold back a new snapshot version so that an
// instance gets at most one snapshot write per MinPublishInterval.
func (r *GatewayConfigReconciler) publishWait(name, published, next string) time.Duration {
	if r.MinPublishInterval <= 0 || published == "" || published == next {
		return 0
	}
	last, ok := r.lastPublish.Load(name)
	if !ok {
		return 0
	}
	return r.MinPublishInterval - r.now().Sub(last.(time.Time))
}

// applyAll writes every desired object and removes optional ones that are
// no longer wanted. It stops with a message, and writes nothing, when an
// object of the same name exists that this GatewayConfig does not own.
// snapCMs are the snapshot ConfigMaps in write order (parts, then head);
// nil leaves the published snapshot, and the key material it pins, as they are.
func (r *GatewayConfigReconciler) applyAll(ctx context.Context, gc *gatewayv1alpha1.GatewayConfig, inst render.Instance, out compile.Output, snapCMs []*corev1.ConfigMap) (conflict string, _ error) {
	desired := []client.Object{inst.ServiceAccount(), inst.Role(), inst.RoleBinding()}
	if snapCMs != nil {
		// The key material before the snapshot that pins it, so pods
		// usually have the bytes when a new route or certificate arrives.
		desired = append(desired, inst.TLSSecretWith(out.TLSData))
	}
	for _, cm := range snapCMs {
		desired = append(desired, cm)
	}
	desired = append(desired, inst.Service(), inst.Deployment(r.Params))
	var unwanted []client.Object
	if snapCMs != nil {
		// Deleted after the head has moved on: no reader still needs them.
		for _, name := range unwantedParts(inst, len(snapCMs)) {
			unwanted = append(unwanted, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: name}})
		}
	}
	if pdb := inst.PodDisruptionBudget(); pdb != nil {
		desired = append(desired, pdb)
	} else {
		unwanted = append(unwanted, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: inst.Name}})
	}
	if hpa := inst.HorizontalPodAutoscaler(); hpa != nil {
		desired = append(desired, hpa)
	} else {
		unwanted = append(unwanted, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: inst.Name}})
	}

	// Check every name first so a conflict leaves the cluster untouched.
	existing := make([]client.Object, len(desired))
	for i, obj := range desired {
		cur, err := r.current(ctx, obj)
		if err != nil {
			return "", err
		}
		if cur != nil && !ownedBy(cur, gc) {
			kind := obj.GetObjectKind().GroupVersionKind().Kind
			return fmt.Sprintf("%s %s/%s already exists and is not owned by GatewayConfig %s (owner: %s); delete or rename it, or use another GatewayConfig name",
				kind, obj.GetNamespace(), obj.GetName(), gc.Name, ownerOf(cur)), nil
		}
		existing[i] = cur
	}
	for i, obj := range desired {
		if err := r.apply(ctx, gc, obj, existing[i]); err != nil {
			return "", err
		}
	}
	for _, obj := range unwanted {
		cur, err := r.current(ctx, obj)
		if err != nil || cur == nil || !ownedBy(cur, gc) {
			continue
		}
		if err := r.Delete(ctx, cur); client.IgnoreNotFound(err) != nil {
			return "", fmt.Errorf("failed to delete %T %s/%s: %w", cur, cur.GetNamespace(), cur.GetName(), err)
		}
		r.Recorder.Eventf(gc, nil, corev1.EventTypeNormal, EventReasonDeleted, "Delete", "deleted %s %s/%s, no longer wanted",
			kindOf(cur), cur.GetNamespace(), cur.GetName())
	}
	return "", nil
}

// current reads the live object with obj's kind and name, or nil.
func (r *GatewayConfigReconciler) current(ctx context.Context, obj client.Object) (client.Object, error) {
	cur, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", obj)
	}
	var reader client.Reader = r.Client
	if _, isSecret := obj.(*corev1.Secret); isSecret && r.APIReader != nil {
		reader = r.APIReader // never pull every Secret's bytes into the cache
	}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return cur, nil
}

func ownedBy(obj client.Object, gc *gatewayv1alpha1.GatewayConfig) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == gc.UID
}

func ownerOf(obj client.Object) string {
	if ref := metav1.GetControllerOf(obj); ref != nil {
		return ref.Kind + " " + ref.Name
	}
	return "none"
}

func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", obj), "*")
}

// observe gathers what the status is computed from: the Deployment, the
// gateway pods and the Service.
func (r *GatewayConfigReconciler) observe(ctx context.Context, inst render.Instance, facts *statusFacts) error {
	dep := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: inst.Name}, dep); err == nil {
		facts.deployment = dep
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(inst.Namespace), client.MatchingLabels(inst.SelectorLabels())); err != nil {
		return fmt.Errorf("failed to list gateway pods: %w", err)
	}
	facts.programmedReplicas = programmedReplicas(pods.Items, facts.snapshotVersion)
	facts.podProblem = podProblem(pods.Items) // sorts pods by name
	facts.refusing, facts.refusal = refusingPods(pods.Items)
	svc := &corev1.Service{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: inst.Name}, svc); err == nil {
		facts.addresses = serviceAddresses(svc)
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// compile gathers the inputs from the cache and runs the pure compiler.
// Ingresses outside spec.ingressNamespaceSelector are never seen by it.
func (r *GatewayConfigReconciler) compile(ctx context.Context, gc *gatewayv1alpha1.GatewayConfig) (compile.Output, error) {
	var (
		classes networkingv1.IngressClassList
		ings    networkingv1.IngressList
		svcs    corev1.ServiceList
		slices  discoveryv1.EndpointSliceList
	)
	for _, l := range []client.ObjectList{&classes, &ings, &svcs, &slices} {
		if err := r.List(ctx, l); err != nil {
			return compile.Output{}, fmt.Errorf("failed to list %T: %w", l, err)
		}
	}
	if sel := gc.Spec.IngressNamespaceSelector; sel != nil {
		selector, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return compile.Output{}, fmt.Errorf("spec.ingressNamespaceSelector: %w", err)
		}
		var nss corev1.NamespaceList
		if err := r.List(ctx, &nss, client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return compile.Output{}, err
		}
		allowed := map[string]bool{}
		for _, ns := range nss.Items {
			allowed[ns.Name] = true
		}
		ings.Items = gslices.DeleteFunc(ings.Items, func(i networkingv1.Ingress) bool { return !allowed[i.Namespace] })
	}
	var defaultCert *types.NamespacedName
	if d := gc.Spec.Defaults; d != nil && d.TLSCertificate != nil {
		defaultCert = &types.NamespacedName{Namespace: d.TLSCertificate.Namespace, Name: d.TLSCertificate.Name}
	}
	secrets, err := r.tlsSecrets(ctx, ings.Items, defaultCert)
	if err != nil {
		return compile.Output{}, err
	}
	in := compile.Inputs{
		Instance: gc.Name, IngressClasses: classes.Items, Ingresses: ings.Items,
		Services: svcs.Items, EndpointSlices: slices.Items, Secrets: secrets, Now: r.now(),
	}
	if d := gc.Spec.Defaults; d != nil && d.DefaultBackend != nil {
		in.DefaultBackend = &compile.BackendRef{Namespace: d.DefaultBackend.Namespace, Service: d.DefaultBackend.Service}
	}
	in.DefaultCertificate = defaultCert
	if r.Compile != nil {
		return r.Compile(in), nil
	}
	return compile.Compile(in), nil
}

// tlsSecrets reads the Secrets the given Ingresses refer to (spec.tls and
// Secret-valued annotations; same namespace only, see ingressSecretRefs).
// Missing ones are left out: the compiler reports them.
func (r *GatewayConfigReconciler) tlsSecrets(ctx context.Context, ings []networkingv1.Ingress, extra *types.NamespacedName) ([]corev1.Secret, error) {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	var keys []types.NamespacedName
	if extra != nil {
		keys = append(keys, *extra)
	}
	for i := range ings {
		keys = append(keys, ingressSecretRefs(&ings[i])...)
	}
	seen := map[types.NamespacedName]bool{}
	var out []corev1.Secret
	{
		for _, key := range keys {
			if seen[key] {
				continue
			}
			seen[key] = true
			sec := &corev1.Secret{}
			if err := reader.Get(ctx, key, sec); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("failed to read TLS Secret %s: %w", key, err)
			}
			out = append(out, *sec)
		}
	}
	return out, nil
}

// apply writes obj whole with server-side apply, owned by gc, so only the
// fields we set are ours and a no-op apply writes nothing.
func (r *GatewayConfigReconciler) apply(ctx context.Context, gc *gatewayv1alpha1.GatewayConfig, obj, existing client.Object) error {
	if err := controllerutil.SetControllerReference(gc, obj, r.Scheme); err != nil {
		return err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	applied := &unstructured.Unstructured{Object: u}
	ac := client.ApplyConfigurationFromUnstructured(applied)
	kind := kindOf(obj)
	if err := r.Apply(ctx, ac, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, EventReasonApplyFailed, "Apply", "failed to apply %s %s/%s: %v", kind, obj.GetNamespace(), obj.GetName(), err)
		return fmt.Errorf("failed to apply %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	// The apply response carries the new resourceVersion: unchanged means
	// nothing was written.
	rv := applied.GetResourceVersion()
	switch {
	case existing == nil:
		r.Recorder.Eventf(gc, nil, corev1.EventTypeNormal, EventReasonCreated, "Create", "created %s %s/%s", kind, obj.GetNamespace(), obj.GetName())
	case rv != "" && rv != existing.GetResourceVersion():
		r.Recorder.Eventf(gc, nil, corev1.EventTypeNormal, EventReasonUpdated, "Update", "updated %s %s/%s", kind, obj.GetNamespace(), obj.GetName())
	}
	return nil
}

// programmedReplicas counts ready, non-terminating gateway pods whose
// snapshot-version annotation (written by gatewaypod) equals version.
func programmedReplicas(pods []corev1.Pod, version string) int32 {
	var n int32
	for i := range pods {
		p := &pods[i]
		if version == "" || p.DeletionTimestamp != nil || p.Annotations[podflags.AnnotationSnapshotVersion] != version {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// podProblem finds the first failure on gateway pods that needs a human:
// an image that cannot be pulled, or sysctls the kubelet forbids.
func podProblem(pods []corev1.Pod) *problem {
	gslices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pods {
		if p.Status.Reason == "SysctlForbidden" {
			return &problem{gatewayv1alpha1.GatewayConfigReasonSysctlForbidden, fmt.Sprintf(
				"pod %s: %s; allow the sysctls in the kubelet (--allowed-unsafe-sysctls) or remove spec.tuning", p.Name, p.Status.Message)}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
					return &problem{gatewayv1alpha1.GatewayConfigReasonImagePullFailed, fmt.Sprintf(
						"pod %s cannot pull image %s (%s): %s; fix spec.image or the registry credentials", p.Name, cs.Image, w.Reason, w.Message)}
				}
			}
		}
	}
	return nil
}

// serviceAddresses are the load balancer's addresses, else the cluster IP.
func serviceAddresses(svc *corev1.Service) []string {
	var out []string
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		if lb.IP != "" {
			out = append(out, lb.IP)
		} else if lb.Hostname != "" {
			out = append(out, lb.Hostname)
		}
	}
	if len(out) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		out = append(out, svc.Spec.ClusterIP)
	}
	return out
}

// reportIngresses emits one Event per changed outcome and sets each
// Ingress's status.loadBalancer: the instance address when accepted, none
// when rejected.
func (r *GatewayConfigReconciler) reportIngresses(ctx context.Context, results []compile.Result, addresses []string) error {
	for _, res := range results {
		ing := &networkingv1.Ingress{}
		if err := r.Get(ctx, res.Ingress, ing); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		r.eventOnChange(ing, res)

		var want []networkingv1.IngressLoadBalancerIngress
		for _, a := range addresses {
			if !res.Accepted {
				break
			}
			if net.ParseIP(a) != nil {
				want = append(want, networkingv1.IngressLoadBalancerIngress{IP: a})
			} else {
				want = append(want, networkingv1.IngressLoadBalancerIngress{Hostname: a})
			}
		}
		if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, want) {
			continue
		}
		patched := ing.DeepCopy()
		patched.Status.LoadBalancer.Ingress = want
		if err := r.Status().Patch(ctx, patched, client.MergeFrom(ing)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to patch status of Ingress %s: %w", res.Ingress, err)
		}
	}
	return nil
}

// instanceWarnings emits the compiler's instance-level warnings (e.g. an
// unresolvable default backend) as Events on the GatewayConfig, once per change.
func (r *GatewayConfigReconciler) instanceWarnings(gc *gatewayv1alpha1.GatewayConfig, warnings []compile.Warning) {
	var b strings.Builder
	for _, w := range warnings {
		fmt.Fprintf(&b, "%s:%s/", w.Reason, w.Message)
	}
	key := types.NamespacedName{Name: "gatewayconfig/" + gc.Name}
	if prev, ok := r.reported.Load(key); ok && prev == b.String() {
		return
	}
	r.reported.Store(key, b.String())
	for _, w := range warnings {
		r.Recorder.Eventf(gc, nil, corev1.EventTypeWarning, w.Reason, "Compile", "%s", w.Message)
	}
}

func (r *GatewayConfigReconciler) eventOnChange(ing *networkingv1.Ingress, res compile.Result) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%t/%s/%s", ing.UID, res.Accepted, res.Reason, res.Message)
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "/%s:%s", w.Reason, w.Message)
	}
	key := b.String()
	if prev, ok := r.reported.Load(res.Ingress); ok && prev == key {
		return
	}
	r.reported.Store(res.Ingress, key)
	if res.Accepted {
		r.Recorder.Eventf(ing, nil, corev1.EventTypeNormal, EventReasonIngressAccepted, "Compile", "Ingress is in the snapshot")
	} else {
		r.Recorder.Eventf(ing, nil, corev1.EventTypeWarning, EventReasonIngressRejected, "Compile", "%s: %s", res.Reason, res.Message)
	}
	for _, w := range res.Warnings {
		r.Recorder.Eventf(ing, nil, corev1.EventTypeWarning, w.Reason, "Compile", "%s", w.Message)
	}
}

// SetupWithManager registers the controller and its watches. Ingress,
// IngressClass, Service and EndpointSlice events wake only the instances
// they concern (through the IngressClass and a backend-Service index), so
// churn for one instance never makes work for another. Namespace events
// (selector labels, a missing instance namespace appearing) wake all.
func (r *GatewayConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := addIndexers(context.Background(), mgr); err != nil {
		return err
	}
	all := handler.EnqueueRequestsFromMapFunc(r.allInstances)
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if name := o.GetLabels()[render.LabelGatewayConfig]; name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&gatewayv1alpha1.GatewayConfig{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&corev1.Pod{}, byLabel).
		Watches(&networkingv1.Ingress{}, handler.EnqueueRequestsFromMapFunc(r.instancesForIngress)).
		Watches(&networkingv1.IngressClass{}, handler.EnqueueRequestsFromMapFunc(instancesForClass)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.instancesForService), builder.WithPredicates(notOurs())).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.instancesForService)).
		Watches(&corev1.Namespace{}, all).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.instancesForSecret), builder.WithPredicates(notOurs())).
		Named("gatewayconfig").
		Complete(r)
}

// notOurs drops events of objects the operator itself labels, which Owns
// already routes to their instance.
func notOurs() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[render.LabelGatewayConfig] == ""
	})
}

func (r *GatewayConfigReconciler) allInstances(ctx context.Context, _ client.Object) []reconcile.Request {
	var list gatewayv1alpha1.GatewayConfigList
	if err := r.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list GatewayConfigs")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, gc := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: gc.Name}})
	}
	gslices.SortFunc(reqs, func(a, b reconcile.Request) int { return strings.Compare(a.Name, b.Name) })
	return reqs
}
