// Package demo is `stratus demo`: a running sandbox shown end to end, one step at a
// time, each printing what it checked and how long it took. It works in its own
// Kubernetes namespace (Namespace), which it empties before it starts and deletes when it
// ends, and it changes the cloud only through its API, as a user would (it deletes one
// route the CCM's route controller owns and lets the controller put it back).
//
// Its checks are the product's: a pod reached from another pod sees the caller's own
// address, a route deleted from the cloud's route table cuts traffic until the route
// controller restores it, a Service of type LoadBalancer answers at its EXTERNAL-IP from
// this machine in both modes, a volume written on one node is read back on another, and
// a second read-write user of it on a third is refused with the CSI driver's reason. It never starts or stops a sandbox component.
package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	vpcapi "github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/podlet"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// Namespace is where the demo's objects live.
const Namespace = "stratus-demo"

// Env is the sandbox the demo runs against.
type Env struct {
	Client kubernetes.Interface
	VPC    *vpcapi.Client
	Plan   *plan.Plan
	Out    io.Writer
	// Timeout bounds each step (default 2 minutes).
	Timeout time.Duration
	// Keep leaves the demo's namespace and everything in it (pods, Services with their
	// load balancers, the claim with its disk) for a look afterwards; the next demo
	// removes it first.
	Keep bool
}

// Step is one check of the demo. Run returns what it showed.
type Step struct {
	Name string
	Run  func(ctx context.Context, d *Demo) (string, error)
}

// Demo is one run: the environment and what earlier steps made for later ones.
type Demo struct {
	Env
	// nodeA and nodeB are two nodes in different zones and subnets, so traffic between
	// them crosses the VPC router.
	nodeA, nodeB plan.Node
	// nodeA2 shares nodeA's zone (a CBS disk attaches only in its own zone), so a volume
	// can move from nodeA to it.
	nodeA2 plan.Node
	pods   map[string]*corev1.Pod
}

// Steps are the demo's steps, in order.
func Steps() []Step {
	return []Step{
		{"pod to pod across nodes", stepPodToPod},
		{"route deleted and restored", stepRoute},
		{"LoadBalancer L4 (NodePort)", stepLB(false)},
		{"LoadBalancer L3 (VIP)", stepLB(true)},
		{"volume follows its pod to another node", stepVolumeMoves},
		{"second read-write pod on another node refused", stepRWORefused},
	}
}

// Run runs every step, stops at the first that fails, and removes the demo's namespace.
func Run(ctx context.Context, env Env) error {
	if env.Timeout <= 0 {
		env.Timeout = 2 * time.Minute
	}
	d := &Demo{Env: env, pods: map[string]*corev1.Pod{}}
	if err := d.pickNodes(); err != nil {
		return err
	}
	start := time.Now()
	if err := d.resetNamespace(ctx); err != nil {
		return err
	}
	if !env.Keep {
		defer d.deleteNamespace()
	}
	fmt.Fprintf(d.Out, "  setup  namespace %s ready (%s)\n", Namespace, since(start))
	steps := Steps()
	for i, s := range steps {
		sctx, cancel := context.WithTimeout(ctx, d.Timeout)
		t0 := time.Now()
		what, err := s.Run(sctx, d)
		cancel()
		if err != nil {
			fmt.Fprintf(d.Out, "  FAIL   %d/%d %s (%s): %v\n", i+1, len(steps), s.Name, since(t0), err)
			return fmt.Errorf("step %d (%s): %w", i+1, s.Name, err)
		}
		fmt.Fprintf(d.Out, "  ok     %d/%d %s (%s): %s\n", i+1, len(steps), s.Name, since(t0), what)
	}
	fmt.Fprintf(d.Out, "demo passed: %d steps in %s\n", len(steps), since(start))
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

// pickNodes chooses node A and node B: the first node, and the first of another zone.
func (d *Demo) pickNodes() error {
	nodes := d.Plan.Nodes
	if len(nodes) < 2 {
		return fmt.Errorf("the demo needs at least 2 nodes; this sandbox has %d (stratus up --nodes 3)", len(nodes))
	}
	d.nodeA, d.nodeB, d.nodeA2 = nodes[0], nodes[1], plan.Node{}
	for _, n := range nodes[1:] {
		if n.Zone != d.nodeA.Zone {
			d.nodeB = n
			break
		}
	}
	for _, n := range nodes[1:] {
		if n.Zone == d.nodeA.Zone {
			d.nodeA2 = n
			break
		}
	}
	if d.nodeA2.Name == "" {
		return fmt.Errorf("the demo needs two nodes in one zone (a disk moves only within its zone); this sandbox has %d nodes (stratus up --nodes 3)", len(nodes))
	}
	return nil
}

func (d *Demo) resetNamespace(ctx context.Context) error {
	nss := d.Client.CoreV1().Namespaces()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, d.Timeout, true, func(ctx context.Context) (bool, error) {
		n, err := nss.Get(ctx, Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if n.DeletionTimestamp == nil {
			// What an earlier, interrupted demo left.
			if err := nss.Delete(ctx, Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("remove the namespace %s of an earlier demo: %w", Namespace, err)
	}
	_, err = nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "stratus-demo"}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	return nil
}

// deleteNamespace removes what the demo made; the podlets tear the pods down.
func (d *Demo) deleteNamespace() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Client.CoreV1().Namespaces().Delete(ctx, Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(d.Out, "  cleanup: delete namespace %s: %v\n", Namespace, err)
	}
}

// echoPod is a pod the podlet runs, pinned to node, labelled app=<app>.
func echoPod(name, app, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{"app": app, "demo": "web"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{Name: "echo", Image: podlet.EchoImage,
				Ports: []corev1.ContainerPort{{ContainerPort: podlet.DefaultPort}}}},
		},
	}
}

// runPod creates pod and waits until it is Ready with an IP.
func (d *Demo) runPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	pods := d.Client.CoreV1().Pods(pod.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create pod %s: %w", pod.Name, err)
	}
	var got *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
				got = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s on %s not Ready: %w", pod.Name, pod.Spec.NodeSelector[corev1.LabelHostname], err)
	}
	d.pods[pod.Name] = got
	return got, nil
}

// podNetns is the network namespace path of a pod the podlet runs.
func (d *Demo) podNetns(pod *corev1.Pod) string {
	return vpcnet.NetnsPath(d.Plan.PodNetns(string(pod.UID)))
}

func stepPodToPod(ctx context.Context, d *Demo) (string, error) {
	a, err := d.runPod(ctx, echoPod("pod-a", "demo-a", d.nodeA.Name))
	if err != nil {
		return "", err
	}
	b, err := d.runPod(ctx, echoPod("pod-b", "demo-b", d.nodeB.Name))
	if err != nil {
		return "", err
	}
	target := net.JoinHostPort(b.Status.PodIP, fmt.Sprint(podlet.DefaultPort))
	var seen string
	err = retry(ctx, func() error {
		seen, err = HTTPFrom(ctx, d.podNetns(a), http.MethodGet, "http://"+target+"/clientip", "")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pod-a (%s on %s) -> pod-b (%s on %s): %w", a.Status.PodIP, d.nodeA.Name, b.Status.PodIP, d.nodeB.Name, err)
	}
	if seen != a.Status.PodIP {
		return "", fmt.Errorf("pod-b saw the caller as %s, not pod-a's %s: the traffic was NATed", seen, a.Status.PodIP)
	}
	return fmt.Sprintf("pod-a %s on %s (%s) reached pod-b %s on %s (%s) through the VPC router; pod-b saw %s",
		a.Status.PodIP, d.nodeA.Name, d.nodeA.Zone, b.Status.PodIP, d.nodeB.Name, d.nodeB.Zone, seen), nil
}

// routeOf returns the route table's route for cidr, if there is one.
func (d *Demo) routeOf(ctx context.Context, cidr string) (*vpcapi.Route, error) {
	out, err := d.VPC.DescribeRouteTables(ctx, &vpcapi.DescribeRouteTablesRequest{RouteTableIds: []string{plan.RouteTableID}})
	if err != nil {
		return nil, fmt.Errorf("describe route table %s: %w", plan.RouteTableID, err)
	}
	for _, t := range out.RouteTableSet {
		for i := range t.RouteSet {
			if t.RouteSet[i].DestinationCidrBlock == cidr {
				return &t.RouteSet[i], nil
			}
		}
	}
	return nil, nil
}

func stepRoute(ctx context.Context, d *Demo) (string, error) {
	a, b := d.pods["pod-a"], d.pods["pod-b"]
	node, err := d.Client.CoreV1().Nodes().Get(ctx, d.nodeB.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get node %s: %w", d.nodeB.Name, err)
	}
	cidr := node.Spec.PodCIDR
	r, err := d.routeOf(ctx, cidr)
	if err != nil {
		return "", err
	}
	if r == nil || r.GatewayId != d.nodeB.IP.String() {
		return "", fmt.Errorf("the route table has no route %s via %s (node %s's podCIDR): is the route controller running?", cidr, d.nodeB.IP, d.nodeB.Name)
	}
	url := "http://" + net.JoinHostPort(b.Status.PodIP, fmt.Sprint(podlet.DefaultPort)) + "/"
	// The route controller puts the route back within its reconciliation period, maybe
	// before a connection had the chance to fail: delete it again until one fails while
	// the route is gone, before and after the attempt.
	var failure error
	var deletedAt time.Time
	for attempt := 0; failure == nil && attempt < 10; attempt++ {
		if _, err := d.VPC.DeleteRoutes(ctx, &vpcapi.DeleteRoutesRequest{RouteTableId: plan.RouteTableID,
			Routes: []vpcapi.Route{{DestinationCidrBlock: cidr}}}); err != nil {
			var gone bool
			if cur, e := d.routeOf(ctx, cidr); e == nil && cur == nil {
				gone = true
			}
			if !gone {
				return "", fmt.Errorf("delete route %s from %s: %w", cidr, plan.RouteTableID, err)
			}
		}
		deletedAt = time.Now()
		for failure == nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			_, err := HTTPFrom(ctx, d.podNetns(a), http.MethodGet, url, "")
			cur, e := d.routeOf(ctx, cidr)
			if e != nil {
				return "", e
			}
			if cur != nil {
				break // restored before a failure was seen: once more
			}
			if err != nil {
				failure = err
			}
		}
	}
	if failure == nil {
		return "", fmt.Errorf("pod-a still reached pod-b every time route %s was deleted", cidr)
	}
	var restored *vpcapi.Route
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cur, err := d.routeOf(ctx, cidr)
		if err != nil || cur == nil {
			return false, nil
		}
		restored = cur
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("the route controller did not put route %s back: %w", cidr, err)
	}
	back := time.Since(deletedAt)
	if restored.GatewayId != d.nodeB.IP.String() {
		return "", fmt.Errorf("route %s came back via %s, not node %s's %s", cidr, restored.GatewayId, d.nodeB.Name, d.nodeB.IP)
	}
	var seen string
	err = retry(ctx, func() error {
		seen, err = HTTPFrom(ctx, d.podNetns(a), http.MethodGet, url+"clientip", "")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pod-a -> pod-b after the route came back: %w", err)
	}
	if seen != a.Status.PodIP {
		return "", fmt.Errorf("pod-b saw %s, not pod-a's %s", seen, a.Status.PodIP)
	}
	return fmt.Sprintf("route %s via %s deleted through the API: pod-a -> pod-b failed (%s); the route controller put it back %s later; pod-a reaches pod-b again",
		cidr, d.nodeB.IP, shortErr(failure), back.Round(100*time.Millisecond)), nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// retry calls fn every 250ms until it succeeds or ctx ends (the last error then).
func retry(ctx context.Context, fn func() error) error {
	var last error
	for {
		if last = fn(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// HTTPFrom sends one HTTP request from inside the network namespace at netnsPath (a
// pod's or a node's) and returns the trimmed body of a 2xx answer. It dials on the
// namespace's thread, so the connection belongs to that namespace.
func HTTPFrom(ctx context.Context, netnsPath, method, url, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	var conn net.Conn
	dial := func() error {
		var err error
		conn, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", req.URL.Host)
		return err
	}
	if netnsPath == "" {
		err = dial()
	} else {
		err = ns.WithNetNSPath(netnsPath, func(ns.NetNS) error { return dial() })
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req.Close = true
	if err := req.Write(conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// ModeAnnotation is the LoadBalancer engine's mode annotation (loadbalancer.AnnotationMode).
const ModeAnnotation = "service.stratus.io/load-balancer-mode"

// stepLB exposes pod-a and pod-b through a Service of type LoadBalancer (L4 NodePort, or
// L3 VIP) and calls its EXTERNAL-IP from this machine until both pods have answered.
func stepLB(vip bool) func(ctx context.Context, d *Demo) (string, error) {
	return func(ctx context.Context, d *Demo) (string, error) {
		name, want := "web-l4", corev1.LoadBalancerIPModeProxy
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"demo": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(podlet.DefaultPort)}}},
		}
		if vip {
			svc.Name, want = "web-l3", corev1.LoadBalancerIPModeVIP
			svc.Annotations = map[string]string{ModeAnnotation: "vip"}
		}
		svcs := d.Client.CoreV1().Services(Namespace)
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("create service %s: %w", svc.Name, err)
		}
		var ing corev1.LoadBalancerIngress
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			s, err := svcs.Get(ctx, svc.Name, metav1.GetOptions{})
			if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
				return false, nil
			}
			ing = s.Status.LoadBalancer.Ingress[0]
			return ing.IP != "", nil
		})
		if err != nil {
			return "", fmt.Errorf("service %s got no EXTERNAL-IP from the CCM: %w", svc.Name, err)
		}
		if ing.IPMode == nil || *ing.IPMode != want {
			return "", fmt.Errorf("service %s: ipMode %v, want %s", svc.Name, ing.IPMode, want)
		}
		ip, err := netip.ParseAddr(ing.IP)
		if err != nil || !d.Plan.PublicPool.Contains(ip) {
			return "", fmt.Errorf("service %s: EXTERNAL-IP %s is not in the sandbox's public pool %s", svc.Name, ing.IP, d.Plan.PublicPool)
		}
		url := "http://" + net.JoinHostPort(ing.IP, "80") + "/"
		seen := map[string]bool{}
		var calls int
		err = retry(ctx, func() error {
			calls++
			body, err := HTTPFrom(ctx, "", http.MethodGet, url, "")
			if err != nil {
				return err
			}
			if _, ok := d.pods[body]; !ok {
				return fmt.Errorf("answered by %q, not one of the demo's pods", body)
			}
			seen[body] = true
			if len(seen) < 2 {
				return fmt.Errorf("only %s answered so far", body)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("curl %s (service %s): %w", url, svc.Name, err)
		}
		how := "the CLB's proxy at the VIP in the VPC router dials node IP:NodePort"
		if vip {
			how = "the VPC router's multipath route sends the VIP to the nodes, whose kube-proxy DNATs it"
		}
		return fmt.Sprintf("EXTERNAL-IP %s (ipMode %s) answered from this machine by pod-a and pod-b in %d calls: %s", ing.IP, want, calls, how), nil
	}
}

// claimName is the demo's PersistentVolumeClaim.
const claimName = "data"

// volumePod is an echo pod on node with the demo's claim mounted at /data.
func volumePod(name, node string) *corev1.Pod {
	p := echoPod(name, "demo-volume", node)
	p.Labels = map[string]string{"app": "demo-volume"}
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return p
}

// deletePod deletes a pod and waits until the podlet has torn it down (volumes
// unpublished, unstaged and detached) and the object is gone.
func (d *Demo) deletePod(ctx context.Context, name string) error {
	pods := d.Client.CoreV1().Pods(Namespace)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("pod %s still there: %w", name, err)
	}
	delete(d.pods, name)
	return nil
}

func stepVolumeMoves(ctx context.Context, d *Demo) (string, error) {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claimName, Namespace: Namespace},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if _, err := d.Client.CoreV1().PersistentVolumeClaims(Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create claim %s: %w", claimName, err)
	}
	w, err := d.runPod(ctx, volumePod("writer", d.nodeA.Name))
	if err != nil {
		return "", err
	}
	content := fmt.Sprintf("written by %s on %s at %s", w.Name, d.nodeA.Name, time.Now().UTC().Format(time.RFC3339Nano))
	url := func(p *corev1.Pod) string {
		return "http://" + net.JoinHostPort(p.Status.PodIP, fmt.Sprint(podlet.DefaultPort)) + "/files/data/hello.txt"
	}
	if err := retry(ctx, func() error {
		_, err := HTTPFrom(ctx, "", http.MethodPut, url(w), content)
		return err
	}); err != nil {
		return "", fmt.Errorf("write a file in the volume of %s: %w", w.Name, err)
	}
	bound, err := d.Client.CoreV1().PersistentVolumeClaims(Namespace).Get(ctx, claimName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	pv := bound.Spec.VolumeName
	if err := d.deletePod(ctx, w.Name); err != nil {
		return "", err
	}
	r, err := d.runPod(ctx, volumePod("reader", d.nodeA2.Name))
	if err != nil {
		return "", err
	}
	var got string
	if err := retry(ctx, func() error {
		got, err = HTTPFrom(ctx, "", http.MethodGet, url(r), "")
		return err
	}); err != nil {
		return "", fmt.Errorf("read the file back on %s: %w", d.nodeA2.Name, err)
	}
	if got != content {
		return "", fmt.Errorf("%s read %q, %s wrote %q", r.Name, got, w.Name, content)
	}
	return fmt.Sprintf("claim %s (volume %s, CBS disk) written by a pod on %s, the pod deleted (volume unpublished, unstaged, detached) and recreated on %s: the file read back is the one written",
		claimName, pv, d.nodeA.Name, d.nodeA2.Name), nil
}

func stepRWORefused(ctx context.Context, d *Demo) (string, error) {
	if _, ok := d.pods["reader"]; !ok {
		return "", fmt.Errorf("the volume step did not leave its reader running")
	}
	// On the node the volume came from: the same zone, so only the single writer rule
	// stands between it and the disk.
	second := volumePod("second", d.nodeA.Name)
	if _, err := d.Client.CoreV1().Pods(Namespace).Create(ctx, second, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create pod %s: %w", second.Name, err)
	}
	var ev corev1.Event
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		evs, err := d.Client.CoreV1().Events(Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + second.Name})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == podlet.ReasonAttach && strings.Contains(e.Message, "FailedPrecondition") {
				ev = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("no Warning %s event with the driver's FailedPrecondition on pod %s: %w", podlet.ReasonAttach, second.Name, err)
	}
	p, err := d.Client.CoreV1().Pods(Namespace).Get(ctx, second.Name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if p.Status.Phase != corev1.PodPending {
		return "", fmt.Errorf("pod %s is %s, want Pending", second.Name, p.Status.Phase)
	}
	return fmt.Sprintf("pod %s on %s (the volume is attached to %s) stays Pending; event %s %s: %s", second.Name, d.nodeA.Name, d.nodeA2.Name, ev.Type, ev.Reason, ev.Message), nil
}
