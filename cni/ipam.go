package cni

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Attachment names one pod interface, the key the runtime uses in DEL and GC.
type Attachment struct {
	ContainerID string
	IfName      string
}

func (a Attachment) String() string { return a.ContainerID + "/" + a.IfName }

// Allocation is one IP handed to one attachment.
type Allocation struct {
	IP    net.IP
	Owner Attachment
	// Unreadable is set for a file a crash left without a complete owner record;
	// the IP stays taken until GC frees it.
	Unreadable bool
}

const (
	lockFileName = "lock"
	nextFileName = "next"
)

// Store is the node-local IPAM state of one network: one file per allocated IP
// under <dataDir>/<network>/, named after the IP and holding its owner. A file is
// created with O_EXCL and made durable (directory fsync) before the IP is used, so
// a crash can lose at most an allocation nobody got, never hand one IP to two pods.
// Every read-modify-write runs under an exclusive flock on the lock file, which
// serialises concurrent plugin processes on the node.
type Store struct {
	dir string
}

// OpenStore creates the network's state directory if needed.
func OpenStore(dataDir, network string) (*Store, error) {
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam state dir %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is where the allocation files live.
func (s *Store) Dir() string { return s.dir }

// Locked runs fn while holding the store's lock. Everything that must not
// interleave with another plugin process (allocation, release, masquerade rules
// that depend on the allocation count) goes through here.
func (s *Store) Locked(fn func(tx *Tx) error) error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open ipam lock in %s: %w", s.dir, err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock ipam state %s: %w", s.dir, err)
	}
	// Closing the file releases the lock, also when fn panics or the process dies.
	return fn(&Tx{s: s})
}

// Tx is the view of the store inside Locked.
type Tx struct {
	s      *Store
	cached []Allocation
	loaded bool
}

// List returns every allocation, including unreadable ones.
func (tx *Tx) List() ([]Allocation, error) {
	if tx.loaded {
		return tx.cached, nil
	}
	entries, err := os.ReadDir(tx.s.dir)
	if err != nil {
		return nil, fmt.Errorf("read ipam state %s: %w", tx.s.dir, err)
	}
	var out []Allocation
	for _, e := range entries {
		ip := net.ParseIP(e.Name())
		if ip == nil {
			continue
		}
		a := Allocation{IP: ip.To4()}
		if a.IP == nil {
			a.IP = ip
		}
		owner, err := readOwner(filepath.Join(tx.s.dir, e.Name()))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			a.Unreadable = true
		default:
			a.Owner = owner
		}
		out = append(out, a)
	}
	tx.cached, tx.loaded = out, true
	return out, nil
}

// Count is the number of allocations, readable or not.
func (tx *Tx) Count() (int, error) {
	l, err := tx.List()
	return len(l), err
}

// Lookup returns the IPs held by one attachment.
func (tx *Tx) Lookup(owner Attachment) ([]net.IP, error) {
	l, err := tx.List()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, a := range l {
		if !a.Unreadable && a.Owner == owner {
			ips = append(ips, a.IP)
		}
	}
	return ips, nil
}

// Allocate gives owner an address from subnet (never the network, gateway or
// broadcast address). An owner that already holds an address in subnet gets it
// back, so a runtime retrying an ADD after a crash does not leak one. Addresses are
// handed out round robin from the last one, so a freed IP is not reused at once.
// fresh reports whether the address was newly allocated, so a failed ADD only
// gives back what it took.
func (tx *Tx) Allocate(owner Attachment, subnet *net.IPNet) (ip net.IP, fresh bool, err error) {
	l, err := tx.List()
	if err != nil {
		return nil, false, err
	}
	used := make(map[string]bool, len(l))
	for _, a := range l {
		if !a.Unreadable && a.Owner == owner && subnet.Contains(a.IP) {
			return a.IP, false, nil
		}
		used[a.IP.String()] = true
	}
	size := hostCount(subnet)
	first, last := uint32(2), size-2 // .0 network, .1 gateway, last broadcast
	start := first
	if next := tx.s.readNext(subnet); next >= first && next <= last {
		start = next
	}
	for i := uint32(0); i <= last-first; i++ {
		off := first + (start-first+i)%(last-first+1)
		ip := nthIP(subnet, off)
		if used[ip.String()] {
			continue
		}
		err := tx.s.create(ip, owner)
		if errors.Is(err, fs.ErrExist) {
			continue // a file List could not see: an allocation is never overwritten
		}
		if err != nil {
			return nil, false, err
		}
		tx.s.writeNext(nthIP(subnet, first+(off-first+1)%(last-first+1)))
		tx.loaded = false
		return ip, true, nil
	}
	return nil, false, fmt.Errorf("ipam: subnet %s is exhausted: all %d pod addresses are allocated", subnet, last-first+1)
}

// Release frees every address owner holds. Releasing nothing is not an error, so
// DEL stays idempotent.
func (tx *Tx) Release(owner Attachment) ([]net.IP, error) {
	ips, err := tx.Lookup(owner)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if err := tx.s.remove(ip); err != nil {
			return nil, err
		}
	}
	tx.loaded = false
	return ips, nil
}

// Retain frees every allocation keep rejects. keep never sees an unreadable one
// (a crash mid-write: its owner never got the address); those are always freed.
func (tx *Tx) Retain(keep func(Attachment) bool) ([]Allocation, error) {
	l, err := tx.List()
	if err != nil {
		return nil, err
	}
	var freed []Allocation
	for _, a := range l {
		if !a.Unreadable && keep(a.Owner) {
			continue
		}
		if err := tx.s.remove(a.IP); err != nil {
			return freed, err
		}
		freed = append(freed, a)
	}
	tx.loaded = false
	return freed, syncDir(tx.s.dir)
}

// create records an allocation. The name, created with O_EXCL, is the
// allocation; the directory fsync makes it durable before ADD goes on. The owner
// record inside is written but not fsynced separately: a power loss can leave the
// file empty, and an empty file is an unreadable allocation, still taken, that GC
// frees (after a power loss no pod survives to hold it). One fsync instead of two
// halves the cost of a durable allocation.
func (s *Store) create(ip net.IP, owner Attachment) error {
	path := filepath.Join(s.dir, ip.String())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("allocate %s: %w", ip, err)
	}
	_, werr := fmt.Fprintf(f, "%s\n%s\n", owner.ContainerID, owner.IfName)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = syncDir(s.dir)
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("allocate %s to %s: %w", ip, owner, werr)
	}
	return nil
}

// remove deletes an allocation file. It does not fsync the directory: if a crash
// loses the removal the IP merely stays taken until the next DEL or GC, which is
// safe, and DEL stays fast.
func (s *Store) remove(ip net.IP) error {
	err := os.Remove(filepath.Join(s.dir, ip.String()))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release %s: %w", ip, err)
	}
	return nil
}

// readNext returns the offset in subnet where the next search starts; the hint is
// only an optimisation, so any problem reading it means "start at the beginning".
func (s *Store) readNext(subnet *net.IPNet) uint32 {
	b, err := os.ReadFile(filepath.Join(s.dir, nextFileName))
	if err != nil {
		return 0
	}
	ip := net.ParseIP(strings.TrimSpace(string(b))).To4()
	if ip == nil || !subnet.Contains(ip) {
		return 0
	}
	base := subnet.IP.To4()
	return (uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])) -
		(uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3]))
}

// writeNext is best effort, in place and not fsynced: losing or tearing the hint
// only changes which free address comes next. The record has a fixed width so an
// overwrite needs no truncation.
func (s *Store) writeNext(ip net.IP) {
	f, err := os.OpenFile(filepath.Join(s.dir, nextFileName), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(f, "%-15s\n", ip.String())
	_ = f.Close()
}

func readOwner(path string) (Attachment, error) {
	f, err := os.Open(path)
	if err != nil {
		return Attachment{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return Attachment{}, err
	}
	if len(lines) != 2 || lines[0] == "" || lines[1] == "" {
		return Attachment{}, fmt.Errorf("%s: incomplete owner record", path)
	}
	return Attachment{ContainerID: lines[0], IfName: lines[1]}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
