// Package teardown is `stratus down`: it stops the supervisor and every process of the
// sandbox, then removes every resource the journal recorded and sweeps, by the
// sandbox's own name prefixes and state dir, what a crashed `up` left unrecorded:
// processes inside the sandbox's namespaces, mounts and loop devices under the state
// dir, namespaces and host links with its prefix. Last it removes the state dir.
//
// It only ever touches what carries this sandbox's prefix, lives under its state dir,
// runs in its namespaces, or is named by its journal and pidfiles (and a pidfile's
// process only if its start time still matches, so a recycled pid is safe). Another
// sandbox's or another program's resources are never touched. It is idempotent: a second
// run, or a run on a state dir that holds nothing, removes nothing and succeeds.
package teardown

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stratus-cloud/stratus/sandbox/plan"
	"github.com/stratus-cloud/stratus/sandbox/state"
	"github.com/stratus-cloud/stratus/sandbox/vpcnet"
)

// Options configure Down.
type Options struct {
	// Plan gives the names to sweep by; only StateDir, NetnsPrefix and LinkPrefix are used.
	Plan *plan.Plan
	// SupervisorGrace is how long the supervisor gets to stop its children after
	// SIGTERM before everything is killed.
	SupervisorGrace time.Duration
	// ProcessGrace is how long a process left running gets after SIGTERM.
	ProcessGrace time.Duration
	// KeepLogs keeps StateDir/logs (a failed `up` keeps them for the user to read).
	KeepLogs bool
}

// Report says what Down removed.
type Report struct {
	Processes, Namespaces, Links, Mounts, Loops, Chains int
	// StateDirRemoved is false when there was no state dir to begin with.
	StateDirRemoved bool
}

func (r Report) String() string {
	return fmt.Sprintf("stopped %d processes; removed %d network namespaces, %d host links, %d mounts, %d loop devices, %d iptables chains",
		r.Processes, r.Namespaces, r.Links, r.Mounts, r.Loops, r.Chains)
}

// Down tears the sandbox down. It carries on past failures and returns all of them.
func Down(opts Options) (Report, error) {
	if opts.SupervisorGrace == 0 {
		opts.SupervisorGrace = 4 * time.Second
	}
	if opts.ProcessGrace == 0 {
		opts.ProcessGrace = 2 * time.Second
	}
	p := opts.Plan
	dir := state.Dir(p.StateDir)
	var rep Report
	var errs []error

	var journal []state.Resource
	if j, err := state.OpenJournal(dir.JournalFile()); err != nil {
		errs = append(errs, err)
	} else {
		journal = j.Resources()
	}

	// 1. The supervisor stops its children itself when asked; give it the chance.
	if sup, err := state.ReadPidFile(dir.SupervisorPidFile()); err == nil && sup.Alive() {
		_ = syscall.Kill(sup.Pid, syscall.SIGTERM)
		if !waitGone([]state.Proc{sup}, opts.SupervisorGrace) {
			_ = syscall.Kill(sup.Pid, syscall.SIGKILL)
			waitGone([]state.Proc{sup}, time.Second)
		}
		rep.Processes++
	}

	// 2. Whatever still runs: processes of our pidfiles, and any process inside one of
	// our namespaces (a child the supervisor did not record, a plugin mid-ADD).
	procs := recordedProcs(dir)
	procs = append(procs, procsInNamespaces(namespaces(p, journal))...)
	procs = append(procs, procsOfStateDir(p.StateDir)...)
	procs = dedupe(procs)
	rep.Processes += stopAll(procs, opts.ProcessGrace)

	// 3. Mounts and loop devices under the state dir (stage 2's volumes, CBS disks).
	n, err := unmountUnder(p.StateDir)
	rep.Mounts += n
	errs = append(errs, err)
	n, err = detachLoopsUnder(p.StateDir)
	rep.Loops += n
	errs = append(errs, err)

	// 4. Host iptables chains the journal names.
	for _, r := range journal {
		if r.Kind != state.KindChain {
			continue
		}
		removed, err := deleteChain(r.Name)
		if removed {
			rep.Chains++
		}
		errs = append(errs, err)
	}

	// 5. Namespaces: deleting one takes its links, routes and iptables rules with it (the
	// router's takes the host link's peer, and so the link and its routes, too).
	for _, name := range namespaces(p, journal) {
		if _, err := os.Stat(vpcnet.NetnsPath(name)); err != nil {
			continue
		}
		if err := vpcnet.DeleteNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Namespaces++
	}

	// 6. Host links, should one have outlived its peer.
	for _, name := range hostLinks(p, journal) {
		l, err := netlink.LinkByName(name)
		if err != nil {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
			errs = append(errs, fmt.Errorf("delete host link %s: %w", name, err))
			continue
		}
		rep.Links++
	}

	// 7. The state dir.
	if _, err := os.Stat(p.StateDir); err == nil {
		errs = append(errs, removeStateDir(dir, opts.KeepLogs))
		rep.StateDirRemoved = true
	}
	return rep, errors.Join(errs...)
}

// namespaces are the journal's and every /run/netns entry with the sandbox's prefix.
func namespaces(p *plan.Plan, journal []state.Resource) []string {
	var out []string
	for _, r := range journal {
		if r.Kind == state.KindNetns {
			out = append(out, r.Name)
		}
	}
	if entries, err := os.ReadDir(vpcnet.NetnsDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), p.NetnsPrefix) {
				out = append(out, e.Name())
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	// Pods and nodes first, the router last: nothing then holds a veth to a deleted peer.
	slices.SortStableFunc(out, func(a, b string) int {
		ra, rb := a == p.RouterNetns, b == p.RouterNetns
		switch {
		case ra && !rb:
			return 1
		case rb && !ra:
			return -1
		}
		return 0
	})
	return out
}

func hostLinks(p *plan.Plan, journal []state.Resource) []string {
	var out []string
	for _, r := range journal {
		if r.Kind == state.KindHostLink {
			out = append(out, r.Name)
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, p.LinkPrefix) {
				out = append(out, l.Attrs().Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func recordedProcs(dir state.Dir) []state.Proc {
	files, _ := dir.PidFiles()
	var out []state.Proc
	for _, f := range files {
		if pr, err := state.ReadPidFile(f); err == nil && pr.Alive() {
			out = append(out, pr)
		}
	}
	return out
}

// procsInNamespaces finds every process whose network namespace is one of names.
func procsInNamespaces(names []string) []state.Proc {
	inodes := map[uint64]bool{}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Stat(vpcnet.NetnsPath(n), &st); err == nil {
			inodes[st.Ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []state.Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil || !inodes[st.Ino] {
			continue
		}
		if pr, err := state.ProcOf(pid); err == nil {
			out = append(out, pr)
		}
	}
	return out
}

// sandboxPrograms are the programs a sandbox runs from outside its state dir; one of
// them whose arguments name the state dir is the sandbox's.
var sandboxPrograms = map[string]bool{
	"etcd": true, "kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true, "kube-proxy": true,
	"csi-provisioner": true, "csi-attacher": true,
}

// procsOfStateDir finds the sandbox's processes on the host that no pidfile names any
// more (a state dir half removed by hand): those running a binary from the state dir's
// bin/, and the sandbox's programs started with the state dir in their arguments. A
// process that merely mentions the state dir (an editor on a log) is left alone.
func procsOfStateDir(stateDir string) []state.Proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	bin := filepath.Join(filepath.Clean(stateDir), "bin") + "/"
	self := os.Getpid()
	var out []state.Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		exe = strings.TrimSuffix(exe, " (deleted)")
		ours := strings.HasPrefix(exe, bin)
		if !ours && sandboxPrograms[filepath.Base(exe)] {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			ours = err == nil && strings.Contains(string(cmdline), filepath.Clean(stateDir)+"/")
		}
		if !ours {
			continue
		}
		if pr, err := state.ProcOf(pid); err == nil {
			out = append(out, pr)
		}
	}
	return out
}

func dedupe(ps []state.Proc) []state.Proc {
	seen := map[state.Proc]bool{}
	var out []state.Proc
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// stopAll sends SIGTERM to each process (and its group, if it leads one), waits up to
// grace, then SIGKILLs what is left. It returns how many it had to stop.
func stopAll(ps []state.Proc, grace time.Duration) int {
	if len(ps) == 0 {
		return 0
	}
	signal := func(sig syscall.Signal) {
		for _, p := range ps {
			if !p.Alive() {
				continue
			}
			if pgid, err := syscall.Getpgid(p.Pid); err == nil && pgid == p.Pid {
				_ = syscall.Kill(-p.Pid, sig)
			}
			_ = syscall.Kill(p.Pid, sig)
		}
	}
	signal(syscall.SIGTERM)
	if !waitGone(ps, grace) {
		signal(syscall.SIGKILL)
		waitGone(ps, 2*time.Second)
	}
	return len(ps)
}

func waitGone(ps []state.Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, p := range ps {
			if p.Alive() {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) (int, error) {
	points, err := mountsUnder(dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, m := range points {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// MountsUnder lists the mount points strictly below dir, deepest first.
func MountsUnder(dir string) ([]string, error) { return mountsUnder(dir) }

func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(out), s.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// LoopsUnder lists the loop devices whose backing file is below dir.
func LoopsUnder(dir string) ([]string, error) {
	entries, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if strings.HasPrefix(backing, prefix) {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(e))))
		}
	}
	return out, nil
}

func detachLoopsUnder(dir string) (int, error) {
	devs, err := LoopsUnder(dir)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, dev := range devs {
		f, err := os.OpenFile(dev, os.O_RDONLY, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", dev, err))
			continue
		}
		err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.ENXIO) {
			errs = append(errs, fmt.Errorf("detach %s: %w", dev, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

var iptablesMu sync.Mutex

// deleteChain flushes and deletes "table/chain" in the host namespace; rules jumping to
// it must be gone already (whoever added one recorded it as part of the chain's owner).
func deleteChain(name string) (bool, error) {
	table, chain, ok := strings.Cut(name, "/")
	if !ok {
		return false, fmt.Errorf("iptables chain %q: not table/chain", name)
	}
	iptablesMu.Lock()
	defer iptablesMu.Unlock()
	if err := exec.Command("iptables", "-w", "-t", table, "-n", "-L", chain).Run(); err != nil {
		return false, nil // not there
	}
	if out, err := exec.Command("iptables", "-w", "-t", table, "-F", chain).CombinedOutput(); err != nil {
		return false, fmt.Errorf("flush iptables chain %s: %w: %s", name, err, out)
	}
	if out, err := exec.Command("iptables", "-w", "-t", table, "-X", chain).CombinedOutput(); err != nil {
		return false, fmt.Errorf("delete iptables chain %s: %w: %s", name, err, out)
	}
	return true, nil
}

// removeStateDir removes what the sandbox writes there (state.Entries) and then the
// directory if that left it empty: a state dir pointed at the wrong place never loses a
// file the sandbox did not write.
func removeStateDir(dir state.Dir, keepLogs bool) error {
	var errs []error
	for _, name := range state.Entries {
		if keepLogs && name == filepath.Base(dir.LogDir()) {
			continue
		}
		if err := os.RemoveAll(dir.Path(name)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", dir.Path(name), err))
		}
	}
	if !keepLogs {
		if err := os.Remove(string(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove state dir %s: %w (it holds files stratus did not write)", dir, err))
		}
	}
	return errors.Join(errs...)
}
