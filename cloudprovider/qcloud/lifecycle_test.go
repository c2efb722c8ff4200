package qcloud

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stratus-cloud/stratus/cloudprovider/instancelookup"
)

// hangingAPI never answers until the call's context ends, so that lookups are in flight
// when the provider stops.
type hangingAPI struct {
	mu    sync.Mutex
	calls int
}

func (h *hangingAPI) DescribeInstances(ctx context.Context, _ instancelookup.Query) (instancelookup.Page, error) {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	<-ctx.Done()
	return instancelookup.Page{}, ctx.Err()
}

func (h *hangingAPI) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// TestNoGoroutineOutlivesTheProvider stops the provider, through the stop channel the
// cloud-controller-manager hands Initialize and through Stop, while a listing walk and a
// batch are in flight: every lookup returns an error (never "gone"), and no goroutine of
// the provider (lookup walks and batches, event broadcaster) is left.
func TestNoGoroutineOutlivesTheProvider(t *testing.T) {
	for _, how := range []string{"stop channel", "Stop"} {
		t.Run(how, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			api := &hangingAPI{}
			batching := true
			cfg := &Config{Region: "ap-guangzhou", VpcID: "vpc-stratus1", ClusterID: "c1", Instances: InstancesConfig{Batching: &batching}}
			c, err := New(cfg, Options{API: api})
			require.NoError(t, err)
			stop := make(chan struct{})
			c.SetKubeClient(fake.NewClientset(), stop)
			v2, _ := c.InstancesV2()

			var wg sync.WaitGroup
			errs := make(chan error, 2)
			wg.Go(func() { // a walk of the VPC
				_, err := v2.InstanceMetadata(context.Background(), node("10.0.1.11"))
				errs <- err
			})
			wg.Go(func() { // a direct lookup by id, once the walk is under way
				_, err := c.lookup.ConfirmByID(context.Background(), "ins-node0001")
				errs <- err
			})
			require.Eventually(t, func() bool { return api.count() == 2 }, 10*time.Second, time.Millisecond, "both calls in flight")

			if how == "Stop" {
				c.Stop()
			} else {
				close(stop)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.Error(t, err)
				assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, instancelookup.ErrStopped), "%v", err)
			}
			c.Stop() // waits, whichever way it was stopped; safe twice
			if how == "Stop" {
				close(stop)
			}

			exists, err := v2.InstanceExists(context.Background(), node("n1", withProviderID("qcloud:///ap-guangzhou-1/ins-node0001")))
			require.ErrorIs(t, err, instancelookup.ErrStopped)
			assert.False(t, exists)
			assert.Equal(t, 2, api.count(), "a stopped provider asks nothing")
		})
	}
}
