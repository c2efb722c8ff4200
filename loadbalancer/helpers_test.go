package loadbalancer

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const testCluster = "cls-test"

func testSettings() Settings { return DefaultSettings(testCluster) }

// modes runs a table in both modes.
var modes = []Mode{ModeNodePort, ModeVIP}

type svcOpt func(*v1.Service)

// service is a LoadBalancer Service default/web (uid-web) with TCP port 80 -> node port
// 30080 and whatever opts change.
func service(opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID("uid-web"), Annotations: map[string]string{}},
		Spec: v1.ServiceSpec{
			Type:                  v1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, NodePort: 30080}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withMode(m Mode) svcOpt { return withAnnotation(AnnotationMode, string(m)) }

func withAnnotation(k, v string) svcOpt {
	return func(s *v1.Service) { s.Annotations[k] = v }
}

func withPorts(ps ...v1.ServicePort) svcOpt { return func(s *v1.Service) { s.Spec.Ports = ps } }

func withLocal(healthPort int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = healthPort
	}
}

func withUID(uid string) svcOpt { return func(s *v1.Service) { s.UID = types.UID(uid) } }

func withName(ns, name string) svcOpt {
	return func(s *v1.Service) { s.Namespace, s.Name = ns, name }
}

func withSourceRanges(r ...string) svcOpt {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

// node is a Node whose providerID names instance ins-<name>; labels are k=v pairs.
func node(name string, labels ...string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}, Spec: v1.NodeSpec{ProviderID: "test:///ins-" + name}}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		n.Labels[k] = v
	}
	return n
}

func uninitialized(name string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func testNodeID(n *v1.Node) (string, bool) {
	id, ok := strings.CutPrefix(n.Spec.ProviderID, "test:///")
	return id, ok && id != ""
}

func nodes(names ...string) []*v1.Node {
	out := make([]*v1.Node, len(names))
	for i, n := range names {
		out[i] = node(n)
	}
	return out
}
