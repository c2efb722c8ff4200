//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/stratus-cloud/stratus/cloudprovider/clbbackend"
	"github.com/stratus-cloud/stratus/cloudprovider/providerid"
	"github.com/stratus-cloud/stratus/loadbalancer"
	"github.com/stratus-cloud/stratus/test/e2e/framework"
)

// TestServiceManifestsServerDryRun sends every Service of examples/manifests/services to
// a real kube-apiserver with dryRun=All and strict field validation, then resolves what
// the server made of it (node ports allocated) through Stratus's spec resolution with the
// cloud's settings: an annotation typo or a value out of range fails here.
func TestServiceManifestsServerDryRun(t *testing.T) {
	ctx := context.Background()
	etcd := framework.StartEtcd(t)
	api := framework.StartAPIServer(t, etcd)
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "examples", "manifests", "services", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)

	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"node-role.example.com/ingress": "true"}},
		Spec: v1.NodeSpec{ProviderID: providerid.Format("ap-guangzhou-1", "ins-node0001")}}
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var svc v1.Service
			err := dec.Decode(&svc)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			t.Run(filepath.Base(f)+"/"+svc.Name, func(t *testing.T) {
				require.Equal(t, "Service", svc.Kind)
				require.Equal(t, v1.ServiceTypeLoadBalancer, svc.Spec.Type)
				created, err := api.Client.CoreV1().Services(svc.Namespace).Create(ctx, &svc, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
				require.NoError(t, err)
				_, err = api.Client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
				assert.True(t, apierrors.IsNotFound(err), "dry run stored %s: %v", svc.Name, err)

				created.UID = "00000000-0000-0000-0000-000000000001" // a dry run assigns none
				spec, err := loadbalancer.Resolve(loadbalancer.Input{Service: created, Nodes: []*v1.Node{node},
					NodeID: func(n *v1.Node) (string, bool) {
						id, err := providerid.Parse(n.Spec.ProviderID)
						return id.InstanceID, err == nil
					},
					Endpoints: map[string]int{"n1": 1}}, clbbackend.Settings("e2e"))
				require.NoError(t, err)
				assert.Len(t, spec.Listeners, len(created.Spec.Ports))
				for _, l := range spec.Listeners {
					assert.Len(t, l.Targets, 1, "listener %s has the node as target", l.ListenerKey)
				}
			})
			seen++
		}
	}
	assert.GreaterOrEqual(t, seen, 5, "public, internal, VIP, UDP and Local examples at least")
}
