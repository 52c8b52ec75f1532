// Package bundlegen builds Portico's OLM bundle (registry+v1, in the layout of
// `operator-sdk generate bundle`) from the kustomize tree in config/. It
// stands in for operator-sdk, which cannot be installed here; the kustomize
// build runs in process (sigs.k8s.io/kustomize/api, the version behind
// kustomize v5.8.2), so neither generator nor tests need a binary.
package bundlegen

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ManagerImagePlaceholder is the image name config/manager/manager.yaml uses
// and config/manager/kustomization.yaml maps to the real operator image.
const ManagerImagePlaceholder = "controller"

// Kustomize builds config/<dir> of the repository at root, like
// `kustomize build config/<dir>`, and returns the objects in output order.
// A non-empty image replaces the operator image first, like
// `cd config/manager && kustomize edit set image controller=<image>`, but in
// memory: the files on disk are never changed.
func Kustomize(root, dir, image string) ([]*unstructured.Unstructured, error) {
	mem := filesys.MakeFsInMemory()
	src := filepath.Join(root, "config")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/config", filepath.ToSlash(rel)), data)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to copy %s: %w", src, err)
	}
	if image != "" {
		if err := setImage(mem, "/config/manager/kustomization.yaml", ManagerImagePlaceholder, image); err != nil {
			return nil, err
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, path.Join("/config", dir))
	if err != nil {
		return nil, fmt.Errorf("failed to build config/%s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		data, err := r.MarshalJSON()
		u := &unstructured.Unstructured{}
		if err == nil {
			err = u.UnmarshalJSON(data) // JSON numbers as int64/float64, as client-go has them
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read %s from config/%s: %w", r.CurId(), dir, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// setImage points the images entry called name in the kustomization file at
// ref (name[:tag][@digest]).
func setImage(mem filesys.FileSystem, file, name, ref string) error {
	data, err := mem.ReadFile(file)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return fmt.Errorf("failed to parse %s: %w", file, err)
	}
	img := types.Image{Name: name}
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, img.Digest = rest[:i], rest[i+1:]
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, img.NewTag = rest[:i], rest[i+1:]
	}
	img.NewName = rest
	if img.NewName == "" {
		return fmt.Errorf("invalid image %q", ref)
	}
	found := false
	for i := range k.Images {
		if k.Images[i].Name == name {
			k.Images[i], found = img, true
		}
	}
	if !found {
		k.Images = append(k.Images, img)
	}
	out, err := yaml.Marshal(&k)
	if err != nil {
		return err
	}
	return mem.WriteFile(file, out)
}
