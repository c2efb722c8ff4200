package loadbalancer_test

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nimbus "github.com/stratus-cloud/stratus/examples/library/loadbalancer"
	lb "github.com/stratus-cloud/stratus/loadbalancer"
)

func node(name string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{ProviderID: "nimbus://" + name}}
}

// Another cloud plugs its Backend into the engine and gets Stratus's spec resolution,
// planning and cache: a Service gets a load balancer, an unchanged one costs no call, a
// node added costs one call, and the Service going deletes what was made for it.
func Example_anotherCloud() {
	cloud := nimbus.NewNimbus()
	engine, err := lb.New(lb.Config{Settings: lb.DefaultSettings("nimbus-prod"), Backend: cloud, NodeID: nimbus.NodeID})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "0f1e2d3c",
			Annotations: map[string]string{lb.AnnotationScheduler: "LEAST_CONN"}},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 443, NodePort: 30443}}},
	}
	nodes := []*v1.Node{node("vm-a"), node("vm-b")}

	status, err := engine.EnsureLoadBalancer(ctx, "kubernetes", svc, nodes)
	if err != nil {
		panic(err)
	}
	fmt.Println("ingress:", status.Ingress[0].IP, *status.Ingress[0].IPMode)
	fmt.Println("calls:", strings.Join(cloud.Log, "; "))

	cloud.Log = nil
	_, _ = engine.EnsureLoadBalancer(ctx, "kubernetes", svc, nodes)
	fmt.Println("unchanged, calls:", len(cloud.Log))

	_ = engine.UpdateLoadBalancer(ctx, "kubernetes", svc, append(nodes, node("vm-c")))
	fmt.Println("node added:", strings.Join(cloud.Log, "; "))

	svc.Annotations[lb.AnnotationHealthCheckInterval] = "often"
	_, err = engine.EnsureLoadBalancer(ctx, "kubernetes", svc, nodes)
	fmt.Println("invalid:", err)

	cloud.Log = nil
	_ = engine.EnsureLoadBalancerDeleted(ctx, "kubernetes", svc)
	fmt.Println("deleted:", strings.Join(cloud.Log, "; "))
	// Output:
	// ingress: 203.0.113.1 Proxy
	// calls: list; create nlb-1; create listeners 1; register 2 targets
	// unchanged, calls: 0
	// node added: register 1 targets
	// invalid: service shop/web: annotation service.stratus.io/health-check-interval: "often" is not a duration (such as 10s) or a number of seconds (no change made to the load balancer)
	// deleted: delete nlb-1
}
