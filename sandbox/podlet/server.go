package podlet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
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
// it, and "PUT" / "GET /files/<path>" write and read a file of the pod's volumes, where
// <path> is the file's path in the container), on UDP a reply with the pod name to every
// datagram. The sockets are made inside the pod's network namespace; the goroutines
// serving them run in the podlet.
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
				srv := &http.Server{Handler: echoHandler(podName, s.Mounts), ReadHeaderTimeout: 10 * time.Second}
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

func echoHandler(podName string, mounts []Mount) http.Handler {
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
	mux.Handle("/files/", &files{mounts: mounts})
	return mux
}

// MaxFileSize bounds a PUT to /files.
const MaxFileSize = 16 << 20

// files serves the pod's volumes: the request path below /files is a path in the
// container, resolved in the volume mounted there (the deepest mount that holds it).
// Nothing outside a volume is reachable: paths are cleaned and opened through an
// os.Root of the volume, which no symlink escapes.
type files struct{ mounts []Mount }

func (f *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + strings.TrimPrefix(r.URL.Path, "/files"))
	var m *Mount
	for i := range f.mounts {
		c := &f.mounts[i]
		if (p == c.Path || strings.HasPrefix(p, strings.TrimSuffix(c.Path, "/")+"/")) && (m == nil || len(c.Path) > len(m.Path)) {
			m = c
		}
	}
	if m == nil {
		http.Error(w, fmt.Sprintf("%s is not in a volume of this pod", p), http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, m.Path), "/")
	if rel == "" {
		rel = "."
	}
	root, err := os.OpenRoot(m.Dir)
	if err != nil {
		http.Error(w, fmt.Sprintf("volume at %s: %v", m.Path, err), http.StatusInternalServerError)
		return
	}
	defer root.Close()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		st, err := root.Stat(rel)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", p, err), http.StatusNotFound)
			return
		}
		if st.IsDir() {
			d, err := root.Open(rel)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			names, err := d.Readdirnames(-1)
			d.Close()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			slices.Sort(names)
			w.Header().Set("Content-Type", "text/plain")
			for _, n := range names {
				fmt.Fprintln(w, n)
			}
			return
		}
		fh, err := root.Open(rel)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", p, err), http.StatusNotFound)
			return
		}
		defer fh.Close()
		http.ServeContent(w, r, path.Base(p), st.ModTime(), fh)
	case http.MethodPut:
		if m.ReadOnly {
			http.Error(w, fmt.Sprintf("%s: the volume at %s is mounted read-only", p, m.Path), http.StatusForbidden)
			return
		}
		if dir := path.Dir(rel); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				http.Error(w, fmt.Sprintf("%s: %v", p, err), http.StatusInternalServerError)
				return
			}
		}
		fh, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", p, err), http.StatusInternalServerError)
			return
		}
		n, err := io.Copy(fh, http.MaxBytesReader(w, r.Body, MaxFileSize))
		if err == nil {
			err = fh.Sync() // written through to the disk before the answer
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", p, err), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "wrote %d bytes to %s\n", n, p)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
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
