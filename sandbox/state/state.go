// Package state is the sandbox's state dir: where each file lives, the journal of every
// machine resource the sandbox made (written before the resource exists, so a crash
// leaves no resource unrecorded), pidfiles that identify a process by pid and start
// time (so a recycled pid is never signalled), and the status file the supervisor keeps
// for `up` and `status` to read.
//
// It only reads and writes files under the state dir; it never creates or removes the
// resources it records.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dir is a sandbox's state directory.
type Dir string

// Paths of the state dir.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}
func (d Dir) ConfigFile() string         { return d.Path("sandbox.json") }
func (d Dir) JournalFile() string        { return d.Path("journal.json") }
func (d Dir) StatusFile() string         { return d.Path("status.json") }
func (d Dir) SupervisorPidFile() string  { return d.Path("supervisor.pid") }
func (d Dir) PidDir() string             { return d.Path("pids") }
func (d Dir) LogDir() string             { return d.Path("logs") }
func (d Dir) BinDir() string             { return d.Path("bin") }
func (d Dir) CNIBinDir() string          { return d.Path("bin", "cni") }
func (d Dir) PKIDir() string             { return d.Path("pki") }
func (d Dir) Kubeconfig() string         { return d.Path("kubeconfig") }
func (d Dir) CredentialsFile() string    { return d.Path("fakecloud", "credentials.yaml") }
func (d Dir) LogFile(name string) string { return filepath.Join(d.LogDir(), safeName(name)+".log") }

// Entries are the top-level names the sandbox writes in its state dir; `down` removes
// these and nothing else.
var Entries = []string{
	"sandbox.json", "journal.json", "status.json", "supervisor.pid", "seed.yaml", "cloud-config.yaml",
	"kubeconfig", "pids", "logs", "bin", "pki", "etcd", "fakecloud", "nodes", "csi",
}

// Exists reports whether the state dir holds anything of a sandbox. The logs alone do
// not count: a failed `up` cleans up and keeps them for the user to read.
func (d Dir) Exists() bool {
	for _, name := range Entries {
		if name == filepath.Base(d.LogDir()) {
			continue
		}
		if _, err := os.Stat(d.Path(name)); err == nil {
			return true
		}
	}
	return false
}

// OnlyLogs reports whether the state dir holds nothing but the logs of an earlier run.
func (d Dir) OnlyLogs() bool {
	entries, err := os.ReadDir(string(d))
	return err == nil && len(entries) == 1 && entries[0].Name() == filepath.Base(d.LogDir())
}

// Resource kinds the journal records.
const (
	KindNetns     = "netns"      // Name: a namespace under /run/netns
	KindHostLink  = "host-link"  // Name: a link in the host namespace
	KindHostRoute = "host-route" // Name: a destination CIDR, Detail: the link
	KindMount     = "mount"      // Name: a mount point
	KindLoop      = "loop"       // Name: a loop device, Detail: its backing file
	KindChain     = "iptables"   // Name: table/chain in the host namespace
	KindPort      = "port"       // Name: the component, Detail: host:port it listens on
)

// Resource is one thing on the machine the sandbox made.
type Resource struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

func (r Resource) String() string {
	if r.Detail != "" {
		return fmt.Sprintf("%s %s (%s)", r.Kind, r.Name, r.Detail)
	}
	return r.Kind + " " + r.Name
}

// Journal is the list of resources, persisted at every Record. One process writes it
// (the supervisor); `down` reads it.
type Journal struct {
	mu   sync.Mutex
	path string
	res  []Resource
}

// OpenJournal loads the journal at path (empty if the file does not exist).
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return j, nil
	case err != nil:
		return nil, fmt.Errorf("read journal: %w", err)
	}
	if err := json.Unmarshal(b, &j.res); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return j, nil
}

// Record adds r (once) and writes the journal before returning, so the caller may create
// the resource knowing that `down` will find it.
func (j *Journal) Record(r Resource) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if slices.Contains(j.res, r) {
		return nil
	}
	j.res = append(j.res, r)
	return WriteJSON(j.path, j.res)
}

// Forget drops r once it is gone.
func (j *Journal) Forget(r Resource) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i := slices.Index(j.res, r)
	if i < 0 {
		return nil
	}
	j.res = slices.Delete(j.res, i, i+1)
	return WriteJSON(j.path, j.res)
}

// Resources lists what is recorded, oldest first.
func (j *Journal) Resources() []Resource {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.res)
}

// WriteJSON writes v to path atomically (temp file and rename), creating the directory.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'), 0o600)
}

// WriteFile writes data to path atomically, creating the directory.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadJSON decodes path into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Proc identifies a process across pid reuse: its pid and its start time in clock ticks
// since boot (field 22 of /proc/PID/stat).
type Proc struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Self is this process.
func Self() (Proc, error) { return ProcOf(os.Getpid()) }

// ProcOf reads pid's identity; an error means it does not exist.
func ProcOf(pid int) (Proc, error) {
	st, err := startTime(pid)
	if err != nil {
		return Proc{}, err
	}
	return Proc{Pid: pid, Start: st}, nil
}

// Alive reports whether the process still runs (and is not a zombie) and is the same
// one: a recycled pid has another start time.
func (p Proc) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return false
	}
	fields, err := statFields(string(b))
	if err != nil || fields[0] == "Z" || fields[0] == "X" {
		return false
	}
	st, err := strconv.ParseUint(fields[19], 10, 64)
	return err == nil && st == p.Start
}

// startTime reads field 22 (starttime) of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields, err := statFields(string(b))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// statFields returns the fields after the command name, which may itself hold spaces
// and parentheses: fields[0] is the state (field 3).
func statFields(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return nil, errors.New("short stat line")
	}
	return f, nil
}

// WritePidFile records p at path.
func WritePidFile(path string, p Proc) error {
	return WriteFile(path, fmt.Appendf(nil, "%d %d\n", p.Pid, p.Start), 0o644)
}

// ReadPidFile reads a pidfile written by WritePidFile.
func ReadPidFile(path string) (Proc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Proc{}, err
	}
	var p Proc
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.Pid, &p.Start); err != nil {
		return Proc{}, fmt.Errorf("pidfile %s: %w", path, err)
	}
	return p, nil
}

// PidFiles lists the component pidfiles under the state dir.
func (d Dir) PidFiles() ([]string, error) {
	entries, err := os.ReadDir(d.PidDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pid") {
			out = append(out, filepath.Join(d.PidDir(), e.Name()))
		}
	}
	return out, nil
}

// PidFile is where the component called name records its process.
func (d Dir) PidFile(name string) string { return filepath.Join(d.PidDir(), safeName(name)+".pid") }

// Phases of the supervisor.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseFailed   = "failed"
	PhaseStopping = "stopping"
)

// Component states.
const (
	StateStarting  = "starting"
	StateRunning   = "running"
	StateUnhealthy = "unhealthy"
	StateExited    = "exited"
	StateStopped   = "stopped"
)

// Status is what the supervisor reports in the status file.
type Status struct {
	Phase      string            `json:"phase"`
	Error      string            `json:"error,omitempty"`
	Supervisor Proc              `json:"supervisor"`
	StartedAt  time.Time         `json:"startedAt"`
	ReadyAt    *time.Time        `json:"readyAt,omitempty"`
	Progress   []string          `json:"progress,omitempty"`
	Components []ComponentStatus `json:"components"`
	Endpoints  Endpoints         `json:"endpoints"`
	Waiting    string            `json:"waiting,omitempty"`
}

// ComponentStatus is one process of the sandbox.
type ComponentStatus struct {
	Name     string `json:"name"`
	Node     string `json:"node,omitempty"`
	Proc     Proc   `json:"proc"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	Log      string `json:"log"`
	Health   string `json:"health,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Endpoints are what a user of the sandbox connects to.
type Endpoints struct {
	Kubeconfig      string `json:"kubeconfig"`
	APIServer       string `json:"apiserver"`
	Fakecloud       string `json:"fakecloud"`
	CredentialsFile string `json:"credentialsFile"`
}

func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, name)
}
