package podlet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
)

// Servers runs the built-in server of each pod.
type Servers interface {
	// Start listens on every port inside s's namespace and answers with podName.
	Start(s *Sandbox, podName string) error
	// Stop closes the pod's listeners.
	Stop(uid string)
}

// EchoServers is the real Servers: on TCP an HTTP server ("GET /" answers the pod name,
// "GET /clientip" the address the request came from, which shows whether a hop NATed
// it), on UDP a reply with the pod name to every datagram. The sockets are made inside
// the pod's network namespace; the goroutines serving them run in the podlet.
type EchoServers struct {
	mu   sync.Mutex
	pods map[string][]io.Closer
}

// NewEchoServers returns an empty set.
func NewEchoServers() *EchoServers { return &EchoServers{pods: map[string][]io.Closer{}} }

// Start binds every port first and serves only once all are bound, so a pod is never
// half up.
func (e *EchoServers) Start(s *Sandbox, podName string) error {
	e.Stop(s.UID)
	var closers []io.Closer
	var serve []func()
	err := ns.WithNetNSPath(s.NetnsPath(), func(ns.NetNS) error {
		for _, p := range s.Ports {
			addr := ":" + strconv.Itoa(int(p.Port))
			switch p.Protocol {
			case corev1.ProtocolUDP:
				pc, err := net.ListenPacket("udp4", addr)
				if err != nil {
					return fmt.Errorf("listen udp %s: %w", addr, err)
				}
				closers = append(closers, pc)
				serve = append(serve, func() { serveUDP(pc, podName) })
			default:
				ln, err := net.Listen("tcp4", addr)
				if err != nil {
					return fmt.Errorf("listen tcp %s: %w", addr, err)
				}
				srv := &http.Server{Handler: echoHandler(podName), ReadHeaderTimeout: 10 * time.Second}
				closers = append(closers, srv)
				serve = append(serve, func() { _ = srv.Serve(ln) })
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range closers {
			_ = c.Close()
		}
		return fmt.Errorf("pod %s/%s: server in %s: %w", s.Namespace, s.Name, s.Netns, err)
	}
	for _, f := range serve {
		go f()
	}
	e.mu.Lock()
	e.pods[s.UID] = closers
	e.mu.Unlock()
	return nil
}

// Stop closes the pod's listeners.
func (e *EchoServers) Stop(uid string) {
	e.mu.Lock()
	closers := e.pods[uid]
	delete(e.pods, uid)
	e.mu.Unlock()
	for _, c := range closers {
		_ = c.Close()
	}
}

func echoHandler(podName string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, podName)
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, host)
	})
	return mux
}

func serveUDP(pc net.PacketConn, podName string) {
	buf := make([]byte, 2048)
	reply := []byte(podName + "\n")
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = pc.WriteTo(reply, from)
	}
}
