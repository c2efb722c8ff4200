package csi

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// inflight refuses a second operation on a key (a volume id, a volume or snapshot name)
// while one runs: the caller gets ABORTED, as the CSI spec asks, and the sidecar retries
// with backoff. Keys never block each other.
type inflight struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// acquire takes every key or none; release undoes it.
func (f *inflight) acquire(keys ...string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]struct{}{}
	}
	for _, k := range keys {
		if _, busy := f.keys[k]; busy {
			return nil, status.Errorf(codes.Aborted, "an operation on %s is already in progress", k)
		}
	}
	for _, k := range keys {
		f.keys[k] = struct{}{}
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, k := range keys {
			delete(f.keys, k)
		}
	}, nil
}
