// Package bundle tests the committed OLM bundle (bundle/, bundle.Dockerfile):
// it passes the validators `operator-sdk bundle validate` runs (default and
// the operatorframework suite), `make bundle` reproduces it byte for byte, and
// the CSV agrees with config/ (RBAC, samples, images).
package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/operator-framework/api/pkg/manifests"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	valerrors "github.com/operator-framework/api/pkg/validation/errors"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/hack/bundlegen"
)

const (
	root        = "../.."
	packageName = "portico"
	csvFile     = root + "/bundle/manifests/" + packageName + ".clusterserviceversion.yaml"
	// kubeVersion is the Kubernetes minor the test control plane runs; the
	// deprecated-API check fails on APIs removed by then.
	kubeVersion = "1.37"
)

func loadCSV(t *testing.T) *olmv1alpha1.ClusterServiceVersion {
	t.Helper()
	data, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatalf("read CSV (run `make bundle`): %v", err)
	}
	csv := &olmv1alpha1.ClusterServiceVersion{}
	if err := yaml.UnmarshalStrict(data, csv); err != nil {
		t.Fatalf("parse CSV: %v", err)
	}
	return csv
}

func bundleAnnotations(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(root + "/bundle/metadata/annotations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatal(err)
	}
	return f.Annotations
}

// TestValidate runs the validators of `operator-sdk bundle validate
// --select-optional suite=operatorframework`. Errors and warnings both fail:
// a warning today is a rejected submission tomorrow.
func TestValidate(t *testing.T) {
	b, err := manifests.GetBundleFromDir(root + "/bundle")
	if err != nil {
		t.Fatalf("load bundle: %v", err)
	}
	if b.Package != packageName || b.DefaultChannel == "" || len(b.Channels) == 0 {
		t.Errorf("bundle metadata: package %q, channels %v, default %q", b.Package, b.Channels, b.DefaultChannel)
	}
	if len(b.V1CRDs) != 1 || b.CSV == nil {
		t.Fatalf("bundle holds %d CRDs and CSV %v", len(b.V1CRDs), b.CSV != nil)
	}
	optional := map[string]string{"k8s-version": kubeVersion}
	suites := map[string]struct {
		validators []interface {
			Validate(...interface{}) []valerrors.ManifestResult
		}
	}{
		"default": {validators: toValidators(validation.DefaultBundleValidators...)},
		"operatorframework": {validators: toValidators(
			validation.OperatorHubV2Validator,
			validation.StandardCapabilitiesValidator,
			validation.StandardCategoriesValidator,
			validation.AlphaDeprecatedAPIsValidator,
			validation.GoodPracticesValidator,
		)},
		"objects": {validators: toValidators(validation.ObjectValidator)},
	}
	for name, s := range suites {
		t.Run(name, func(t *testing.T) {
			objs := append(b.ObjectsToValidate(), optional)
			for _, v := range s.validators {
				for _, r := range v.Validate(objs...) {
					for _, e := range r.Errors {
						t.Errorf("%s: %v", r.Name, e)
					}
					for _, w := range r.Warnings {
						t.Errorf("warning, %s: %v", r.Name, w)
					}
				}
			}
		})
	}
}

func toValidators[V interface {
	Validate(...interface{}) []valerrors.ManifestResult
}](vs ...V) []interface {
	Validate(...interface{}) []valerrors.ManifestResult
} {
	var out []interface {
		Validate(...interface{}) []valerrors.ManifestResult
	}
	for _, v := range vs {
		out = append(out, v)
	}
	return out
}

// TestReproducible regenerates the bundle from config/ into a temporary
// directory, with the version, image and channels of the committed one, and
// requires identical files: nothing in bundle/ is edited by hand or stale.
func TestReproducible(t *testing.T) {
	csv := loadCSV(t)
	ann := bundleAnnotations(t)
	out, err := bundlegen.Generate(bundlegen.Options{
		Root:           root,
		Version:        csv.Spec.Version.String(),
		Image:          csv.Annotations["containerImage"],
		Package:        ann["operators.operatorframework.io.bundle.package.v1"],
		Channels:       strings.Split(ann["operators.operatorframework.io.bundle.channels.v1"], ","),
		DefaultChannel: ann["operators.operatorframework.io.bundle.channel.default.v1"],
	})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := bundlegen.Write(tmp, out); err != nil {
		t.Fatal(err)
	}
	want, got := tree(t, tmp), tree(t, root)
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s is missing: run `make bundle VERSION=%s`", p, csv.Spec.Version)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s is stale: run `make bundle VERSION=%s` (-committed +generated):\n%s", p, csv.Spec.Version, cmp.Diff(string(g), string(w)))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is not generated any more: run `make bundle VERSION=%s`", p, csv.Spec.Version)
		}
	}
}

// tree reads the generated paths (bundle/**, bundle.Dockerfile) under dir.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(dir, bundlegen.BundleDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, bundlegen.DockerfilePath)); err == nil {
		files[bundlegen.DockerfilePath] = data
	}
	return files
}

// TestPermissionsMatchRBAC: OLM grants exactly what the generated ClusterRole
// (config/rbac/role.yaml, from the +kubebuilder:rbac markers) and the leader
// election Role grant with kustomize.
func TestPermissionsMatchRBAC(t *testing.T) {
	csv := loadCSV(t)
	spec := csv.Spec.InstallStrategy.StrategySpec
	if len(spec.DeploymentSpecs) != 1 {
		t.Fatalf("want one Deployment, got %d", len(spec.DeploymentSpecs))
	}
	sa := spec.DeploymentSpecs[0].Spec.Template.Spec.ServiceAccountName
	check := func(what string, got []olmv1alpha1.StrategyDeploymentPermissions, file string) {
		t.Helper()
		var role rbacv1.ClusterRole
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(bytes.TrimPrefix(data, []byte("---\n")), &role); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ServiceAccountName != sa {
			t.Fatalf("%s: want one entry for ServiceAccount %s, got %+v", what, sa, got)
		}
		if d := cmp.Diff(role.Rules, got[0].Rules); d != "" {
			t.Errorf("%s differ from %s (-%s +CSV):\n%s", what, file, file, d)
		}
	}
	check("clusterPermissions", spec.ClusterPermissions, "config/rbac/role.yaml")
	check("permissions", spec.Permissions, "config/rbac/leader_election_role.yaml")
}

// TestExamples: alm-examples are the GatewayConfig samples, one north-south
// and one east-west, exactly as in config/samples.
func TestExamples(t *testing.T) {
	csv := loadCSV(t)
	var got []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &got); err != nil {
		t.Fatalf("alm-examples: %v", err)
	}
	var want []map[string]any
	for _, f := range []string{"gateway_v1alpha1_gatewayconfig_northsouth.yaml", "gateway_v1alpha1_gatewayconfig_eastwest.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "config/samples", f))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("alm-examples differ from config/samples (-samples +CSV):\n%s", d)
	}
	var types []any
	for _, e := range got {
		types = append(types, e["spec"].(map[string]any)["trafficType"])
	}
	if !slices.Contains(types, any("NorthSouth")) || !slices.Contains(types, any("EastWest")) {
		t.Errorf("alm-examples traffic types %v, want a NorthSouth and an EastWest", types)
	}
}

// TestCompleteness checks what the issue asks of the CSV beyond what the
// validators require.
func TestCompleteness(t *testing.T) {
	csv := loadCSV(t)
	if csv.Spec.DisplayName == "" || !strings.Contains(csv.Spec.Description, "## Usage") ||
		len(csv.Spec.Icon) == 0 || len(csv.Spec.Keywords) == 0 || len(csv.Spec.Maintainers) == 0 ||
		len(csv.Spec.Links) == 0 || csv.Spec.Maturity == "" || csv.Spec.MinKubeVersion == "" {
		t.Error("CSV lacks one of displayName, description with a usage guide, icon, keywords, maintainers, links, maturity, minKubeVersion")
	}
	modes := map[olmv1alpha1.InstallModeType]bool{}
	for _, m := range csv.Spec.InstallModes {
		modes[m.Type] = m.Supported
	}
	if len(modes) != 4 || !modes[olmv1alpha1.InstallModeTypeAllNamespaces] {
		t.Errorf("install modes %v: want all four listed, AllNamespaces supported", modes)
	}
	owned := csv.Spec.CustomResourceDefinitions.Owned
	if len(owned) != 1 {
		t.Fatalf("want one owned CRD, got %d", len(owned))
	}
	var status []string
	for _, d := range owned[0].StatusDescriptors {
		status = append(status, d.Path)
	}
	for _, p := range []string{"phase", "conditions", "addresses", "replicas", "readyReplicas"} {
		if !slices.Contains(status, p) {
			t.Errorf("no status descriptor for %s", p)
		}
	}
	if len(owned[0].SpecDescriptors) == 0 {
		t.Error("no spec descriptors")
	}

	// relatedImages name the operator image and the gateway image (the same
	// image: gateway pods run the operator's own version by default).
	img := csv.Annotations["containerImage"]
	names := map[string]string{}
	for _, ri := range csv.Spec.RelatedImages {
		names[ri.Name] = ri.Image
	}
	if names["manager"] != img || names["gateway"] != img {
		t.Errorf("relatedImages %v: want manager and gateway = %s", names, img)
	}
	c := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec.Containers[0]
	if c.Image != img || !slices.Contains(c.Args, "--gateway-image=$(RELATED_IMAGE_GATEWAY)") || !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("manager container: image %s, args %v", c.Image, c.Args)
	}
}

// TestDockerfileMatchesAnnotations: the bundle image labels and
// metadata/annotations.yaml must agree (OLM reads one, registries the other).
func TestDockerfileMatchesAnnotations(t *testing.T) {
	ann := bundleAnnotations(t)
	f, err := os.Open(filepath.Join(root, bundlegen.DockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	labels := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "LABEL "); ok {
			k, v, _ := strings.Cut(l, "=")
			labels[k] = v
		}
	}
	if d := cmp.Diff(ann, labels); d != "" {
		t.Errorf("bundle.Dockerfile labels differ from annotations.yaml (-annotations +labels):\n%s", d)
	}
	if ann["operators.operatorframework.io.bundle.mediatype.v1"] != "registry+v1" {
		t.Errorf("media type %q", ann["operators.operatorframework.io.bundle.mediatype.v1"])
	}
}
