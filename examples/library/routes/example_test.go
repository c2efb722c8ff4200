package routes_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"

	nimbus "github.com/stratus-cloud/stratus/examples/library/routes"
	"github.com/stratus-cloud/stratus/routes"
)

func node(name, ip, podCIDR string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: ip}}},
	}
}

// Another cloud plugs its route table into the engine and gets cloudprovider.Routes: its
// cloud provider returns the engine from Routes(), and the upstream route controller
// drives it. Here the controller's part (concurrent CreateRoute calls, then a listing) is
// played by hand.
func Example() {
	ctx := context.Background()
	table := &nimbus.NimbusTable{Running: map[netip.Addr]bool{}}
	var nodes []*v1.Node
	for i := range 25 {
		n := node(fmt.Sprintf("n%02d", i), fmt.Sprintf("192.168.0.%d", 10+i), fmt.Sprintf("10.8.%d.0/24", i))
		nodes = append(nodes, n)
		table.Running[netip.MustParseAddr(n.Status.Addresses[0].Address)] = true
	}
	// A route someone made by hand, to the destination node n07 asks for.
	_ = table.Create(ctx, []routes.Route{{Destination: netip.MustParsePrefix("10.8.7.0/24"), Gateway: netip.MustParseAddr("192.168.0.2"), Description: "by hand"}})
	table.Calls = 0

	engine, err := routes.New(routes.Config{
		ClusterID: "nimbus-prod",
		Table:     table,
		Batching:  true,
		Nodes:     func() ([]*v1.Node, error) { return nodes, nil },
	})
	if err != nil {
		panic(err)
	}
	var r cloudprovider.Routes = engine

	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			errs[i] = r.CreateRoute(ctx, "kubernetes", string(n.UID), &cloudprovider.Route{
				TargetNode: types.NodeName(n.Name), TargetNodeAddresses: n.Status.Addresses, DestinationCIDR: n.Spec.PodCIDR,
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			fmt.Printf("%s: %v\n", nodes[i].Name, err)
		}
	}
	calls := table.Calls
	listed, _ := r.ListRoutes(ctx, "kubernetes")
	all, _ := table.List(ctx)
	fmt.Printf("%d routes of cluster nimbus-prod, %d in the table\n", len(listed), len(all))
	fmt.Println("fewer calls than routes:", calls < len(nodes))
	for _, e := range all {
		if d := e.Destination.String(); d == "10.8.6.0/24" || d == "10.8.7.0/24" {
			fmt.Printf("%s via %s (%s)\n", e.Destination, e.Gateway, e.Description)
		}
	}
	// Unordered output:
	// n07: node n07: create route 10.8.7.0/24 via 192.168.0.17: DestinationTaken: 10.8.7.0/24 is routed already
	// 24 routes of cluster nimbus-prod, 25 in the table
	// fewer calls than routes: true
	// 10.8.6.0/24 via 192.168.0.16 (stratus.io/cluster=nimbus-prod)
	// 10.8.7.0/24 via 192.168.0.2 (by hand)
}
