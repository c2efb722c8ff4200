package instancelookup

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// snapshot is one walk of the VPC listing, plus what direct lookups found since. Its maps
// are read and written under Lookup.mu.
type snapshot struct {
	// seq numbers the walks in the order they started: a walk with seq > n began after
	// the n-th walk, so after any question asked while only n walks had begun.
	seq uint64
	// at is when the walk began: the listing is as old as its first page.
	at time.Time
	// total is the TotalCount of the walk's first page; pages derives from it.
	total int
	// complete: every page reported the same TotalCount and the walk met that many
	// distinct instances. Only a complete walk proves an absence: instances created or
	// deleted between two pages shift the offsets, and a live instance can fall between
	// them.
	complete bool
	byID     map[string]Instance
	byIP     map[string]Instance
}

func (s *snapshot) add(inst Instance) {
	if old, ok := s.byID[inst.ID]; ok {
		for _, ip := range old.PrivateIPs {
			if s.byIP[ip].ID == inst.ID {
				delete(s.byIP, ip)
			}
		}
	}
	s.byID[inst.ID] = inst
	for _, ip := range inst.PrivateIPs {
		s.byIP[ip] = inst
	}
}

func (s *snapshot) removeID(id string) {
	old, ok := s.byID[id]
	if !ok {
		return
	}
	delete(s.byID, id)
	for _, ip := range old.PrivateIPs {
		if s.byIP[ip].ID == id {
			delete(s.byIP, ip)
		}
	}
}

// pages is how many requests a walk of this VPC takes.
func (s *snapshot) pages() int { return max(1, (s.total+MaxPageSize-1)/MaxPageSize) }

// walk is one listing in flight; done is closed when snap or err is set.
type walk struct {
	seq  uint64
	done chan struct{}
	snap *snapshot
	err  error
}

// walksStarted is the seq of the latest walk begun; a lookup notes it when it is asked.
func (l *Lookup) walksStarted() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// listing returns a listing younger than maxAge, or one begun after the question noted
// asked; it joins the walk in flight or starts one. After a failed walk it returns that
// walk's error, without a new walk, until RetryAfter has passed: a caller that acts on
// state never gets an answer older than it asked for, and the controllers retry.
func (l *Lookup) listing(ctx context.Context, asked uint64, maxAge time.Duration) (*snapshot, error) {
	for {
		l.mu.Lock()
		if s := l.snap; s != nil && (l.cfg.Now().Sub(s.at) < maxAge || s.seq > asked) {
			l.mu.Unlock()
			return s, nil
		}
		w := l.walking
		if w == nil {
			if l.walkErr != nil && l.cfg.Now().Sub(l.failedAt) < l.cfg.RetryAfter {
				err := l.walkErr
				l.mu.Unlock()
				return nil, err
			}
			if w = l.startWalkLocked(); w == nil {
				l.mu.Unlock()
				return nil, l.group.stopped()
			}
		}
		l.mu.Unlock()
		select {
		case <-w.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if w.err != nil {
			return nil, w.err
		}
		// A walk that began before the question and took longer than maxAge does not
		// answer it: go round and start a newer one.
		if l.cfg.Now().Sub(w.snap.at) < maxAge || w.seq > asked {
			return w.snap, nil
		}
	}
}

// walkAfter returns the listing of a walk begun after the question noted asked, waiting
// for the walk in flight when that one began too early. Like listing, it starts no walk
// within RetryAfter of a failed one.
func (l *Lookup) walkAfter(ctx context.Context, asked uint64) (*snapshot, error) {
	for {
		l.mu.Lock()
		if s := l.snap; s != nil && s.seq > asked {
			l.mu.Unlock()
			return s, nil
		}
		w := l.walking
		if w == nil {
			if l.walkErr != nil && l.cfg.Now().Sub(l.failedAt) < l.cfg.RetryAfter {
				err := l.walkErr
				l.mu.Unlock()
				return nil, err
			}
			if w = l.startWalkLocked(); w == nil {
				l.mu.Unlock()
				return nil, l.group.stopped()
			}
		}
		l.mu.Unlock()
		select {
		case <-w.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if w.seq > asked {
			return w.snap, w.err
		}
	}
}

// startWalkLocked starts a walk in the group; nil when the owner has stopped.
func (l *Lookup) startWalkLocked() *walk {
	w := &walk{seq: l.started + 1, done: make(chan struct{})}
	if !l.group.goFunc(func(ctx context.Context) { l.runWalk(ctx, w) }) {
		return nil
	}
	l.started = w.seq
	l.walking = w
	return w
}

func (l *Lookup) runWalk(ctx context.Context, w *walk) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	start := l.cfg.Now()
	s, err := l.walkVPC(ctx, w.seq, start)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.walking = nil
	w.snap, w.err = s, err
	if err != nil {
		l.walkErr, l.failedAt = err, l.cfg.Now()
		klog.ErrorS(err, "Listing the VPC's instances failed; lookups that need a fresh listing return this error until the next try",
			"vpc", l.cfg.VpcID, "retryAfter", l.cfg.RetryAfter)
	} else {
		l.snap, l.walkErr, l.failedAt = s, nil, time.Time{}
		klog.V(4).InfoS("Listed the VPC's instances", "vpc", l.cfg.VpcID, "instances", len(s.byID), "pages", s.pages(),
			"complete", s.complete, "took", l.cfg.Now().Sub(start))
	}
	close(w.done)
}

// walkVPC lists every instance of the VPC, page by page (vpc-id filter, Limit MaxPageSize).
func (l *Lookup) walkVPC(ctx context.Context, seq uint64, start time.Time) (*snapshot, error) {
	s := &snapshot{seq: seq, at: start, complete: true, byID: map[string]Instance{}, byIP: map[string]Instance{}}
	for offset, first := 0, true; ; first = false {
		p, err := l.describe(ctx, Query{VpcID: l.cfg.VpcID, Offset: offset, Limit: MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("list instances of VPC %s at offset %d: %w", l.cfg.VpcID, offset, err)
		}
		if first {
			s.total = p.Total
		} else if p.Total != s.total {
			s.complete = false
		}
		for _, inst := range p.Instances {
			s.add(inst)
		}
		offset += len(p.Instances)
		if len(p.Instances) == 0 || offset >= p.Total {
			break
		}
	}
	if len(s.byID) != s.total {
		s.complete = false
	}
	return s, nil
}
