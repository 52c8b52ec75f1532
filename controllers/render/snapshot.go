package render

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
)

// PartConfigMaps are the names of every part ConfigMap a split snapshot
// may use (chunks 1 to snapshot.MaxParts-1), in order. The list is fixed so
// the Role and the Deployment's volume never change with the snapshot size.
func (in Instance) PartConfigMaps() []string {
	names := make([]string, 0, snapshot.MaxParts-1)
	for i := 1; i < snapshot.MaxParts; i++ {
		names = append(names, snapshot.PartName(in.ConfigMap, i))
	}
	return names
}

// SnapshotConfigMaps returns the ConfigMaps that carry an encoded snapshot,
// in write order: the part ConfigMaps first, the head (ConfigMap) last, so
// a reader that sees a new head finds its parts already written. A payload
// of at most partSize bytes (0: snapshot.DefaultPartSize) is the head alone,
// as before splitting existed. Above snapshot.MaxParts parts it returns a
// *snapshot.TooLargeError and nothing to write.
func (in Instance) SnapshotConfigMaps(encoded []byte, version string, partSize int) ([]*corev1.ConfigMap, error) {
	chunks, m, err := snapshot.Split(encoded, version, partSize)
	if err != nil {
		return nil, err
	}
	head := in.ConfigMapWith(chunks[0], version)
	if m == nil {
		return []*corev1.ConfigMap{head}, nil
	}
	head.Data[snapshot.ManifestKey] = string(snapshot.MarshalManifest(m))
	out := make([]*corev1.ConfigMap, 0, len(chunks))
	for i, c := range chunks[1:] {
		part := &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: in.meta(snapshot.PartName(in.ConfigMap, i+1)),
			Data:       map[string]string{snapshot.PartKey: string(c), snapshot.PartVersionKey: version},
		}
		part.Annotations = map[string]string{podflags.AnnotationSnapshotVersion: version}
		out = append(out, part)
	}
	return append(out, head), nil
}

// partsVolume mounts every possible part ConfigMap, each optional, as
// <DefaultSnapshotPartsDir>/<i>/{part,version} (podflags.SnapshotPartFile),
// so a pod that starts while the API is away can assemble a split snapshot.
func (in Instance) partsVolume() corev1.Volume {
	var sources []corev1.VolumeProjection
	for i, name := range in.PartConfigMaps() {
		sources = append(sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: name},
			Items: []corev1.KeyToPath{
				{Key: snapshot.PartKey, Path: podflags.SnapshotPartFile(i+1, snapshot.PartKey)},
				{Key: snapshot.PartVersionKey, Path: podflags.SnapshotPartFile(i+1, snapshot.PartVersionKey)},
			},
			Optional: ptr.To(true),
		}})
	}
	return corev1.Volume{Name: partsVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: sources},
	}}
}
