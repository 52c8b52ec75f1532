package bundlegen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Options say which bundle to generate.
type Options struct {
	// Root is the repository root; config/manifests is built from it.
	Root string
	// Version is the operator version (semver without a leading v).
	Version string
	// Image is the operator image; empty keeps config/manager's.
	Image string
	// Package is the OLM package name.
	Package string
	// Channels the bundle is published in; DefaultChannel must be one.
	Channels       []string
	DefaultChannel string
}

// Output is a generated bundle.
type Output struct {
	// Files maps a slash-separated path relative to the repository root
	// (bundle/..., bundle.Dockerfile) to its content.
	Files map[string][]byte
	// LeftOut names the objects of config/manifests that have no place in a
	// registry+v1 bundle (for example the sample IngressClasses and Ingress).
	LeftOut []string
}

// Paths of the generated tree, relative to the repository root.
const (
	BundleDir      = "bundle"
	ManifestsDir   = "bundle/manifests"
	MetadataDir    = "bundle/metadata"
	DockerfilePath = "bundle.Dockerfile"
	relatedPrefix  = "RELATED_IMAGE_"
	managerName    = "manager"
)

// bundleKinds are the kinds OLM installs from a registry+v1 bundle besides the
// CSV and CRDs (operator-registry's list of supported resources).
var bundleKinds = map[string]bool{
	"Secret": true, "ClusterRole": true, "ClusterRoleBinding": true, "ConfigMap": true,
	"ServiceAccount": true, "Service": true, "Role": true, "RoleBinding": true,
	"PrometheusRule": true, "ServiceMonitor": true, "PodMonitor": true, "PodDisruptionBudget": true,
	"PriorityClass": true, "VerticalPodAutoscaler": true, "ConsoleYAMLSample": true,
	"ConsoleQuickStart": true, "ConsoleCLIDownload": true, "ConsoleLink": true, "NetworkPolicy": true,
}

// Generate builds config/manifests and assembles the bundle.
func Generate(o Options) (*Output, error) {
	if _, err := semver.Parse(o.Version); err != nil {
		return nil, fmt.Errorf("invalid version %q (want x.y.z): %w", o.Version, err)
	}
	if o.Package == "" || len(o.Channels) == 0 || !slices.Contains(o.Channels, o.DefaultChannel) {
		return nil, fmt.Errorf("need a package, channels and a default channel among them (got %q, %v, %q)", o.Package, o.Channels, o.DefaultChannel)
	}
	objs, err := Kustomize(o.Root, "manifests", o.Image)
	if err != nil {
		return nil, err
	}

	g := &gen{out: &Output{Files: map[string][]byte{}}, used: map[*unstructured.Unstructured]bool{}}
	var csv *olmv1alpha1.ClusterServiceVersion
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterServiceVersion":
			if csv != nil {
				return nil, fmt.Errorf("config/manifests holds more than one ClusterServiceVersion")
			}
			csv = &olmv1alpha1.ClusterServiceVersion{}
			if err := strictConvert(u.Object, csv); err != nil {
				return nil, fmt.Errorf("invalid CSV base: %w", err)
			}
			g.used[u] = true
		case "CustomResourceDefinition":
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
				return nil, fmt.Errorf("invalid CRD %s: %w", u.GetName(), err)
			}
			g.crds = append(g.crds, crd)
		case "Namespace":
			g.used[u] = true // OLM installs into the namespace the user picks
		}
	}
	if csv == nil {
		return nil, fmt.Errorf("config/manifests holds no ClusterServiceVersion base")
	}
	if err := g.install(csv, objs); err != nil {
		return nil, err
	}
	if err := g.owned(csv, objs); err != nil {
		return nil, err
	}

	csv.Name = o.Package + ".v" + o.Version
	csv.Spec.Version = version.OperatorVersion{Version: semver.MustParse(o.Version)}
	csv.Annotations["containerImage"] = g.managerImage
	data, err := marshal(csv)
	if err != nil {
		return nil, err
	}
	g.out.Files[ManifestsDir+"/"+o.Package+".clusterserviceversion.yaml"] = data

	for _, u := range objs {
		if g.used[u] {
			continue
		}
		id := u.GetKind() + "/" + u.GetName()
		if u.GetKind() != "CustomResourceDefinition" && !bundleKinds[u.GetKind()] {
			g.out.LeftOut = append(g.out.LeftOut, id)
			continue
		}
		c := u.DeepCopy()
		c.SetNamespace("") // OLM sets the operator's namespace
		data, err := marshal(c.Object)
		if err != nil {
			return nil, err
		}
		name := fileName(c)
		if _, dup := g.out.Files[name]; dup {
			return nil, fmt.Errorf("two objects map to %s", name)
		}
		g.out.Files[name] = data
	}

	meta := bundleMetadata(o)
	g.out.Files[MetadataDir+"/annotations.yaml"] = annotationsYAML(meta)
	g.out.Files[DockerfilePath] = dockerfile(meta)
	return g.out, nil
}

type gen struct {
	out          *Output
	crds         []*apiextensionsv1.CustomResourceDefinition
	used         map[*unstructured.Unstructured]bool
	managerImage string
}

// install moves the Deployments, and the RBAC bound to their
// ServiceAccounts, into the CSV's install strategy.
func (g *gen) install(csv *olmv1alpha1.ClusterServiceVersion, objs []*unstructured.Unstructured) error {
	accounts := map[string]bool{}
	var specs []olmv1alpha1.StrategyDeploymentSpec
	var images []olmv1alpha1.RelatedImage
	addImage := func(name, image string) {
		ri := olmv1alpha1.RelatedImage{Name: name, Image: image}
		if image != "" && !slices.Contains(images, ri) {
			images = append(images, ri)
		}
	}
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			return fmt.Errorf("invalid Deployment %s: %w", u.GetName(), err)
		}
		g.used[u] = true
		sa := d.Spec.Template.Spec.ServiceAccountName
		if sa == "" {
			return fmt.Errorf("deployment %s names no serviceAccountName; OLM needs one to grant permissions", d.Name)
		}
		accounts[sa] = true
		specs = append(specs, olmv1alpha1.StrategyDeploymentSpec{Name: d.Name, Label: d.Labels, Spec: d.Spec})
		pod := d.Spec.Template.Spec
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			if c.Name == managerName && g.managerImage == "" {
				g.managerImage = c.Image
			}
			addImage(c.Name, c.Image)
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, relatedPrefix) {
					addImage(strings.ToLower(strings.TrimPrefix(e.Name, relatedPrefix)), e.Value)
				}
			}
		}
	}
	if len(specs) == 0 || g.managerImage == "" {
		return fmt.Errorf("config/manifests holds no Deployment with a %q container", managerName)
	}

	roles := map[string]*unstructured.Unstructured{} // kind/name
	for _, u := range objs {
		if k := u.GetKind(); k == "Role" || k == "ClusterRole" {
			roles[k+"/"+u.GetName()] = u
		}
	}
	perms := map[string]*olmv1alpha1.StrategyDeploymentPermissions{}
	clusterPerms := map[string]*olmv1alpha1.StrategyDeploymentPermissions{}
	for _, u := range objs {
		kind := u.GetKind()
		if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.RoleBinding // same fields as ClusterRoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			return fmt.Errorf("invalid %s %s: %w", kind, u.GetName(), err)
		}
		var sas []string
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && accounts[s.Name] {
				sas = append(sas, s.Name)
			}
		}
		if len(sas) == 0 {
			continue
		}
		if len(sas) != len(b.Subjects) {
			return fmt.Errorf("%s %s binds the operator and other subjects; split it", kind, b.Name)
		}
		role := roles[b.RoleRef.Kind+"/"+b.RoleRef.Name]
		if role == nil {
			return fmt.Errorf("%s %s refers to %s %s, which config/ does not define", kind, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		var r rbacv1.ClusterRole // a Role has the same rules field
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &r); err != nil {
			return fmt.Errorf("invalid %s %s: %w", b.RoleRef.Kind, b.RoleRef.Name, err)
		}
		target := perms
		if kind == "ClusterRoleBinding" {
			target = clusterPerms
		}
		for _, sa := range sas {
			p := target[sa]
			if p == nil {
				p = &olmv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa}
				target[sa] = p
			}
			p.Rules = append(p.Rules, r.Rules...)
		}
		g.used[u], g.used[role] = true, true
	}
	for _, u := range objs {
		if u.GetKind() == "ServiceAccount" && accounts[u.GetName()] {
			g.used[u] = true // OLM creates it from the permissions
		}
	}

	csv.Spec.InstallStrategy = olmv1alpha1.NamedInstallStrategy{
		StrategyName: olmv1alpha1.InstallStrategyNameDeployment,
		StrategySpec: olmv1alpha1.StrategyDetailsDeployment{
			DeploymentSpecs:    specs,
			Permissions:        sortedPerms(perms),
			ClusterPermissions: sortedPerms(clusterPerms),
		},
	}
	csv.Spec.RelatedImages = images
	return nil
}

func sortedPerms(m map[string]*olmv1alpha1.StrategyDeploymentPermissions) []olmv1alpha1.StrategyDeploymentPermissions {
	var out []olmv1alpha1.StrategyDeploymentPermissions
	for _, p := range m {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServiceAccountName < out[j].ServiceAccountName })
	return out
}

// owned completes spec.customresourcedefinitions.owned from the CRDs, checks
// every descriptor path against the CRD schema, and turns the samples of
// owned kinds into alm-examples.
func (g *gen) owned(csv *olmv1alpha1.ClusterServiceVersion, objs []*unstructured.Unstructured) error {
	base := csv.Spec.CustomResourceDefinitions.Owned
	var owned []olmv1alpha1.CRDDescription
	kinds := map[string]bool{}
	for _, crd := range g.crds {
		var ver *apiextensionsv1.CustomResourceDefinitionVersion
		for i := range crd.Spec.Versions {
			if crd.Spec.Versions[i].Storage {
				ver = &crd.Spec.Versions[i]
			}
		}
		if ver == nil {
			return fmt.Errorf("CRD %s has no storage version", crd.Name)
		}
		kinds[crd.Spec.Group+"/"+crd.Spec.Names.Kind] = true
		d := olmv1alpha1.CRDDescription{Name: crd.Name}
		if i := slices.IndexFunc(base, func(b olmv1alpha1.CRDDescription) bool { return b.Name == crd.Name }); i >= 0 {
			d = base[i]
		}
		d.Version, d.Kind = ver.Name, crd.Spec.Names.Kind
		if d.DisplayName == "" {
			d.DisplayName = d.Kind
		}
		if d.Description == "" && ver.Schema != nil && ver.Schema.OpenAPIV3Schema != nil {
			d.Description = ver.Schema.OpenAPIV3Schema.Description
		}
		schema := ver.Schema.OpenAPIV3Schema
		for _, s := range d.SpecDescriptors {
			if err := checkPath(schema, "spec", s.Path); err != nil {
				return fmt.Errorf("CSV base, %s specDescriptor: %w", d.Kind, err)
			}
		}
		for _, s := range d.StatusDescriptors {
			if err := checkPath(schema, "status", s.Path); err != nil {
				return fmt.Errorf("CSV base, %s statusDescriptor: %w", d.Kind, err)
			}
		}
		owned = append(owned, d)
	}
	for _, b := range base {
		if !slices.ContainsFunc(owned, func(d olmv1alpha1.CRDDescription) bool { return d.Name == b.Name }) {
			return fmt.Errorf("CSV base describes CRD %s, which config/ does not define", b.Name)
		}
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i].Name < owned[j].Name })
	csv.Spec.CustomResourceDefinitions.Owned = owned

	var examples []any
	for _, u := range objs {
		if kinds[u.GroupVersionKind().Group+"/"+u.GetKind()] {
			c := u.DeepCopy()
			c.SetNamespace("")
			examples = append(examples, c.Object)
			g.used[u] = true
		}
	}
	if len(examples) == 0 {
		return fmt.Errorf("config/samples holds no example of an owned kind")
	}
	data, err := json.MarshalIndent(examples, "", "  ")
	if err != nil {
		return err
	}
	if csv.Annotations == nil {
		csv.Annotations = map[string]string{}
	}
	csv.Annotations["alm-examples"] = string(data)
	return nil
}

// checkPath fails when the dotted descriptor path does not name a field
// under root.<top> in the schema (array items are stepped through).
func checkPath(root *apiextensionsv1.JSONSchemaProps, top, p string) error {
	s, ok := root.Properties[top]
	if !ok {
		return fmt.Errorf("schema has no %s", top)
	}
	for _, part := range strings.Split(p, ".") {
		for s.Items != nil && s.Items.Schema != nil {
			s = *s.Items.Schema
		}
		next, ok := s.Properties[part]
		if !ok {
			return fmt.Errorf("path %s.%s is not in the CRD schema", top, p)
		}
		s = next
	}
	return nil
}

// fileName names a bundle manifest the way operator-sdk does.
func fileName(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	if gvk.Kind == "CustomResourceDefinition" {
		group, plural, _ := strings.Cut(u.GetName(), ".")
		return ManifestsDir + "/" + plural + "_" + group + ".yaml"
	}
	parts := []string{u.GetName()}
	if gvk.Group != "" {
		parts = append(parts, gvk.Group)
	}
	parts = append(parts, gvk.Version, strings.ToLower(gvk.Kind))
	return ManifestsDir + "/" + strings.Join(parts, "_") + ".yaml"
}

// strictConvert decodes a map into a typed object, failing on unknown fields
// so a typo in the CSV base is an error rather than a silent drop.
func strictConvert(m map[string]any, into any) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// marshal writes obj as YAML with sorted keys, without the empty fields
// that typed objects carry (creationTimestamp, status).
func marshal(obj any) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	if spec, ok := m["spec"].(map[string]any); ok && m["kind"] == "ClusterServiceVersion" {
		// The typed CSV always writes spec.cleanup; disabled is OLM's default.
		if c, ok := spec["cleanup"].(map[string]any); ok && c["enabled"] == false && len(c) == 1 {
			delete(spec, "cleanup")
		}
	}
	return yaml.Marshal(m)
}

// prune drops "creationTimestamp: null" at any depth (typed pod templates
// carry one).
func prune(v any) {
	switch t := v.(type) {
	case map[string]any:
		if ts, ok := t["creationTimestamp"]; ok && ts == nil {
			delete(t, "creationTimestamp")
		}
		for _, c := range t {
			prune(c)
		}
	case []any:
		for _, c := range t {
			prune(c)
		}
	}
}

// Write replaces bundle/manifests, bundle/metadata and bundle.Dockerfile under
// dest with out, so files of objects that left config/ disappear too.
func Write(dest string, out *Output) error {
	for _, d := range []string{ManifestsDir, MetadataDir} {
		if err := os.RemoveAll(filepath.Join(dest, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	for p, data := range out.Files {
		full := filepath.Join(dest, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
