package images

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of a kustomization.yaml the manifests use.
type kustomization struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Resources  []string        `json:"resources"`
	Images     []imageOverride `json:"images"`
}

// imageOverride is one entry of a kustomization's images:.
type imageOverride struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
}

// container is one container of a workload in the manifests.
type container struct {
	file, workload, name string
	image                string // as written in the manifest
	resolved             string // after the top-level kustomization's images:
	command              []string
}

func readKustomization(t testing.TB, dir string) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	var k kustomization
	require.NoError(t, yaml.UnmarshalStrict(b, &k), "%s/kustomization.yaml", dir)
	return k
}

// manifestContainers walks the top-level kustomization into each component's and returns
// every container of every Deployment and DaemonSet, with its image resolved through the
// top-level images: list (the same name match kustomize does: the image without its tag).
func manifestContainers(t testing.TB, root string) (kustomization, []container) {
	t.Helper()
	top := filepath.Join(root, "examples", "manifests")
	k := readKustomization(t, top)
	require.NotEmpty(t, k.Resources)
	var out []container
	for _, res := range k.Resources {
		dir := filepath.Join(top, res)
		st, err := os.Stat(dir)
		require.NoError(t, err, "resource %s", res)
		require.True(t, st.IsDir(), "top-level resources are component folders, %s is not", res)
		comp := readKustomization(t, dir)
		require.Empty(t, comp.Images, "%s/kustomization.yaml sets images: the top level is the one place", res)
		for _, f := range comp.Resources {
			out = append(out, fileContainers(t, filepath.Join(dir, f), res+"/"+f)...)
		}
	}
	for i := range out {
		out[i].resolved = out[i].image
		name, _, _ := strings.Cut(out[i].image, ":")
		for _, im := range k.Images {
			if im.Name == name {
				out[i].resolved = im.NewName + ":" + im.NewTag
			}
		}
	}
	return k, out
}

func fileContainers(t testing.TB, path, rel string) []container {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []container
	for {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						InitContainers []struct {
							Name    string   `json:"name"`
							Image   string   `json:"image"`
							Command []string `json:"command"`
						} `json:"initContainers"`
						Containers []struct {
							Name    string   `json:"name"`
							Image   string   `json:"image"`
							Command []string `json:"command"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, rel)
		switch obj.Kind {
		case "Deployment", "DaemonSet", "StatefulSet":
		default:
			continue
		}
		ps := obj.Spec.Template.Spec
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			out = append(out, container{file: rel, workload: obj.Kind + "/" + obj.Metadata.Name, name: c.Name, image: c.Image, command: c.Command})
		}
	}
}

// TestManifestsNameTheImagesMakeBuilds needs no archive: every container image in the
// manifests is one images.list builds, tagged with the project version, both as written
// (kubectl apply -f on one file) and through the kustomization (kubectl apply -k).
// upstreamSidecars is where the CSI sidecars come from: the only images the manifests name
// that `make images` does not build.
const upstreamSidecars = "registry.k8s.io/sig-storage/"

func TestManifestsNameTheImagesMakeBuilds(t *testing.T) {
	root := repoRoot(t)
	version := projectVersion(t, root)
	listed := map[string]bool{}
	for _, e := range readList(t, root) {
		listed[e.name] = true
	}
	k, containers := manifestContainers(t, root)
	require.NotEmpty(t, containers)
	used := map[string]bool{}
	for _, c := range containers {
		t.Run(c.file+"/"+c.workload+"/"+c.name, func(t *testing.T) {
			name, tag, ok := strings.Cut(c.image, ":")
			require.True(t, ok, "%s names %q without a tag", c.file, c.image)
			used[name] = true
			if strings.HasPrefix(name, upstreamSidecars) {
				// Upstream CSI sidecars: not ours to build, but pinned and overridable.
				assert.Equal(t, c.image, c.resolved, "the kustomization resolves %s to %s", c.image, c.resolved)
				return
			}
			short, found := strings.CutPrefix(name, "stratus/")
			assert.True(t, found, "%s: image %q is not under the default registry prefix stratus/", c.file, c.image)
			assert.True(t, listed[short], "%s: image %s is not in build/images/images.list", c.file, short)
			assert.Equal(t, version, tag, "%s: image %s is not tagged with the VERSION file's %s", c.file, c.image, version)
			assert.Equal(t, "stratus/"+short+":"+version, c.resolved, "the kustomization resolves %s to %s", c.image, c.resolved)
		})
	}
	for _, im := range k.Images {
		assert.True(t, used[im.Name], "kustomization images: entry %s matches no container", im.Name)
		if !strings.HasPrefix(im.Name, upstreamSidecars) {
			assert.Equal(t, version, im.NewTag, "kustomization images: %s newTag", im.Name)
		}
	}
	for name := range used {
		assert.True(t, slices.ContainsFunc(k.Images, func(i imageOverride) bool { return i.Name == name }), "image %s has no entry in the kustomization's images:, so registry and tag cannot be set for it", name)
	}
}
