package podlet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// Sandbox is one pod's network sandbox, as recorded on disk before it is made.
type Sandbox struct {
	UID         string `json:"uid"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Netns       string `json:"netns"`
	ContainerID string `json:"containerID"`
	IP          string `json:"ip,omitempty"`
	Ports       []Port `json:"ports"`
	// Mounts are the pod's volumes, which its server serves under /files.
	Mounts  []Mount   `json:"mounts,omitempty"`
	Created time.Time `json:"created"`
	// ConfList is the conflist ADD ran with; DEL runs with the same one, whatever the
	// node's config dir holds by then.
	ConfList []byte `json:"confList,omitempty"`
}

// NetnsPath is the path of the sandbox's namespace.
func (s *Sandbox) NetnsPath() string { return vpcnet.NetnsPath(s.Netns) }

// Network makes and removes pod sandboxes.
type Network interface {
	// Ready reports nil once the node's CNI config exists (until then the node is not
	// Ready, as a kubelet reports "cni config uninitialized").
	Ready() error
	// Setup creates s's namespace and runs CNI ADD in it, filling s.IP and s.ConfList.
	// On failure it removes whatever it made.
	Setup(ctx context.Context, s *Sandbox) error
	// Teardown runs CNI DEL and removes the namespace; what is already gone is fine.
	Teardown(ctx context.Context, s *Sandbox) error
	// Exists reports whether s's namespace is still there (after a podlet restart).
	Exists(s *Sandbox) bool
}

// CNI is the Network of a sandbox node: named namespaces and the node's conflist run
// through libcni, with the plugin processes started from the podlet, that is inside the
// node's network namespace, so the bridge and veths live there.
type CNI struct {
	ConfDir  string
	BinDirs  []string
	CacheDir string
}

// Ready reports whether a conflist is in ConfDir.
func (c *CNI) Ready() error {
	files, err := libcni.ConfFiles(c.ConfDir, []string{".conflist"})
	if err != nil {
		return fmt.Errorf("cni config dir %s: %w", c.ConfDir, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("cni config uninitialized: no conflist in %s yet", c.ConfDir)
	}
	return nil
}

func (c *CNI) confList() ([]byte, *libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(c.ConfDir, []string{".conflist"})
	if err != nil || len(files) == 0 {
		return nil, nil, c.Ready()
	}
	// Like a runtime: the first file in lexical order wins.
	b, err := os.ReadFile(files[0])
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", files[0], err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", files[0], err)
	}
	return b, list, nil
}

func (c *CNI) runtimeConf(s *Sandbox) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: s.ContainerID,
		NetNS:       s.NetnsPath(),
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", s.Namespace},
			{"K8S_POD_NAME", s.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", s.ContainerID},
			{"K8S_POD_UID", s.UID},
		},
	}
}

// Setup creates the namespace and runs ADD.
func (c *CNI) Setup(ctx context.Context, s *Sandbox) error {
	raw, list, err := c.confList()
	if err != nil {
		return err
	}
	s.ConfList = raw
	if err := vpcnet.AddNetns(nil, s.Netns); err != nil {
		return err
	}
	cninet := libcni.NewCNIConfigWithCacheDir(c.BinDirs, c.CacheDir, nil)
	res, err := cninet.AddNetworkList(ctx, list, c.runtimeConf(s))
	if err == nil {
		var r *current.Result
		if r, err = current.NewResultFromResult(res); err == nil {
			for _, ip := range r.IPs {
				if ip.Address.IP.To4() != nil {
					s.IP = ip.Address.IP.String()
					break
				}
			}
			if s.IP == "" {
				err = errors.New("the plugin returned no IPv4 address")
			}
		}
	}
	if err != nil {
		_ = c.Teardown(ctx, s)
		return fmt.Errorf("CNI ADD for pod %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// Teardown runs DEL (with the conflist ADD used) and removes the namespace.
func (c *CNI) Teardown(ctx context.Context, s *Sandbox) error {
	var errs []error
	raw := s.ConfList
	if len(raw) == 0 {
		raw, _, _ = c.confList()
	}
	if len(raw) > 0 {
		list, err := libcni.ConfListFromBytes(raw)
		if err == nil {
			rt := c.runtimeConf(s)
			if !c.Exists(s) {
				rt.NetNS = "" // DEL without a namespace still releases the address
			}
			err = libcni.NewCNIConfigWithCacheDir(c.BinDirs, c.CacheDir, nil).DelNetworkList(ctx, list, rt)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL for pod %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	if err := vpcnet.DeleteNetns(s.Netns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Exists reports whether the namespace is there.
func (c *CNI) Exists(s *Sandbox) bool {
	_, err := os.Stat(s.NetnsPath())
	return err == nil
}

// records keeps one file per sandbox in dir, written before the sandbox is made.
type records struct{ dir string }

func (r records) path(uid string) string { return filepath.Join(r.dir, uid+".json") }

func (r records) save(s *Sandbox) error { return state.WriteJSON(r.path(s.UID), s) }

func (r records) remove(uid string) error {
	if err := os.Remove(r.path(uid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (r records) list() ([]*Sandbox, error) {
	entries, err := os.ReadDir(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Sandbox
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var s Sandbox
		if err := state.ReadJSON(filepath.Join(r.dir, e.Name()), &s); err != nil {
			continue
		}
		out = append(out, &s)
	}
	return out, nil
}
