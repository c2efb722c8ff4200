package framework

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// kustomization is kustomize's input file, not an object for the API server (the
// kustomize e2e test applies it through kubectl).
const kustomization = "kustomization.yaml"

// DecodeManifests decodes every object of the YAML files matching pattern (a file's
// path matches itself), in file order, skipping empty documents and kustomization.yaml.
// It fails the test when no file matches.
func DecodeManifests(t testing.TB, pattern string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(pattern)
	require.NoError(t, err)
	require.NotEmpty(t, files, pattern)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == kustomization {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			if len(m) > 0 {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return objs
}

// ExampleManifests decodes every object of examples/manifests/<set> ("ccm", "csi",
// "cni"), as DecodeManifests does.
func ExampleManifests(t testing.TB, set string) []*unstructured.Unstructured {
	t.Helper()
	root, err := RepoRoot()
	require.NoError(t, err)
	return DecodeManifests(t, filepath.Join(root, "examples", "manifests", set, "*.yaml"))
}

// APIMapper maps kinds to resources with what the apiserver serves right now; a test
// that installs CRDs waits until they are served and builds its own.
func APIMapper(t testing.TB, api *APIServer) meta.RESTMapper {
	t.Helper()
	groups, err := restmapper.GetAPIGroupResources(api.Client.Discovery())
	require.NoError(t, err)
	return restmapper.NewDiscoveryRESTMapper(groups)
}

// CreateManifests creates every object with strict field validation, the way `kubectl
// apply` would, and returns their kinds in order. With dryRun set it is `kubectl apply
// --dry-run=server`: schema, defaulting and admission all run, and the test asserts that
// nothing was stored. Only objects of the given kinds are sent when kinds is not empty;
// a nil mapper is APIMapper's.
func CreateManifests(ctx context.Context, t testing.TB, api *APIServer, mapper meta.RESTMapper, objs []*unstructured.Unstructured, dryRun bool, kinds ...string) []string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(api.Config)
	require.NoError(t, err)
	if mapper == nil {
		mapper = APIMapper(t, api)
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var created []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if len(kinds) > 0 && !slices.Contains(kinds, gvk.Kind) {
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err, "%s %s", gvk, o.GetName())
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		}
		got, err := ri.Create(ctx, o, opts)
		require.NoError(t, err, "create (dry run %t) %s %s/%s", dryRun, gvk.Kind, o.GetNamespace(), o.GetName())
		assert.Equal(t, o.GetName(), got.GetName())
		if dryRun {
			_, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "dry run stored %s %s: %v", gvk.Kind, o.GetName(), err)
		}
		created = append(created, gvk.Kind)
	}
	return created
}
