package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/sandbox/podlet"
	"github.com/stratus-cloud/stratus/sandbox/supervisor"
)

// cmdPodlet is the kubelet stand-in of one node; the supervisor starts it inside the
// node's network namespace.
func cmdPodlet(args []string) error {
	fs := flag.NewFlagSet("podlet", flag.ContinueOnError)
	klog.InitFlags(fs)
	node := fs.String("node-name", "", "the node this podlet plays")
	nodeIP := fs.String("node-ip", "", "the node's address")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	confDir := fs.String("cni-conf-dir", "", "the node's CNI config dir")
	binDir := fs.String("cni-bin-dir", "", "where the CNI plugins are")
	cacheDir := fs.String("cni-cache-dir", "", "libcni's cache dir for this node")
	podsDir := fs.String("pods-dir", "", "where the podlet records its pod sandboxes")
	prefix := fs.String("netns-prefix", "", "prefix of the pod namespaces' names")
	healthz := fs.String("healthz-address", "", "host:port of /healthz (empty: none)")
	csiDriver := fs.String("csi-driver", "", "the CSI driver whose claims the podlet serves (empty: no volumes)")
	csiSocket := fs.String("csi-socket", "", "the CSI node plugin's unix socket")
	kubeletDir := fs.String("kubelet-dir", "", "where volumes are staged and published (the kubelet's directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, v := range map[string]string{"--node-name": *node, "--node-ip": *nodeIP, "--kubeconfig": *kubeconfig,
		"--cni-conf-dir": *confDir, "--cni-bin-dir": *binDir, "--cni-cache-dir": *cacheDir, "--pods-dir": *podsDir, "--netns-prefix": *prefix} {
		if v == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	defer klog.Flush()
	client, err := supervisor.ClientFor(*kubeconfig)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	var volumes podlet.Volumes = podlet.NoVolumes{}
	if *csiDriver != "" {
		if *csiSocket == "" || *kubeletDir == "" {
			return errors.New("--csi-driver needs --csi-socket and --kubelet-dir")
		}
		v := &podlet.CSIVolumes{Client: client, NodeName: *node, Driver: *csiDriver, Socket: *csiSocket, KubeletDir: *kubeletDir}
		defer v.Close()
		volumes = v
	}
	p, err := podlet.New(podlet.Config{
		Node:        podlet.NodeInfo{Name: *node, IP: *nodeIP},
		Client:      client,
		Recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "podlet", Host: *node}),
		Network:     &podlet.CNI{ConfDir: *confDir, BinDirs: []string{*binDir}, CacheDir: *cacheDir},
		Servers:     podlet.NewEchoServers(),
		Volumes:     volumes,
		PodsDir:     *podsDir,
		NetnsPrefix: *prefix,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *healthz != "" {
		ln, err := net.Listen("tcp", *healthz)
		if err != nil {
			return fmt.Errorf("healthz on %s: %w", *healthz, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if err := p.Healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
