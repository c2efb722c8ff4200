package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// An ADD holds an exclusive flock on <store>/inflight-<host veth name> from before
// it allocates until it returns. GC skips any attachment whose claim is held, so a
// GC racing an ADD (whose attachment the runtime cannot list yet) never frees the
// address or veth being set up. The kernel drops the lock when the process dies,
// so a crashed ADD's claim reads as stale and GC cleans up after it.

const inflightPrefix = "inflight-"

// claimInFlight takes the claim for one attachment; the returned func drops it.
func claimInFlight(dir, name string) (func(), error) {
	path := filepath.Join(dir, inflightPrefix+name)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", path, err)
		}
		if err := flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("claim %s: %w", path, err)
		}
		// GC may have removed a stale claim file between our open and our lock;
		// then we hold a lock nobody can see and must start over.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			return func() {
				_ = os.Remove(path)
				_ = f.Close()
			}, nil
		}
		f.Close()
	}
}

// inFlight reports whether an ADD holds the claim for name. A claim file nobody
// holds was left by a crash; it is removed.
func inFlight(dir, name string) bool {
	path := filepath.Join(dir, inflightPrefix+name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true // cannot tell: keeping is the safe side
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = os.Remove(path)
	return false
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// sweepClaims removes every claim file no ADD holds.
func sweepClaims(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.Name(), inflightPrefix); ok {
			_ = inFlight(dir, name)
		}
	}
}
