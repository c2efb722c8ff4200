package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Options tune the data plane. Zero values take the defaults documented per field.
type Options struct {
	// DialTimeout bounds a connection attempt to a target (default 3s).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow (client address -> target) after this long without
	// traffic (default 60s).
	UDPIdleTimeout time.Duration
	// CloseTimeout bounds how long Close waits for connection goroutines (default 5s).
	CloseTimeout time.Duration
}

func (o *Options) defaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.UDPIdleTimeout <= 0 {
		o.UDPIdleTimeout = 60 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
}

// Health is a target's health as the checks last concluded.
type Health int

// Health states. A new target is Unknown, and eligible, until its first passing check
// makes it Healthy or UnhealthyThreshold failing checks in a row make it Unhealthy.
const (
	HealthUnknown Health = iota
	Healthy
	Unhealthy
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "Healthy"
	case Unhealthy:
		return "Unhealthy"
	}
	return "Unknown"
}

// DataPlane runs the listeners of a Spec. It is safe for concurrent use.
type DataPlane struct {
	opts Options

	mu        sync.Mutex
	listeners map[string]*listener
	closed    bool
}

// New returns an empty data plane; Apply gives it listeners.
func New(opts Options) *DataPlane {
	opts.defaults()
	return &DataPlane{opts: opts, listeners: map[string]*listener{}}
}

// Apply makes the running listeners match spec: it stops listeners that are gone, starts
// new ones, and updates the rest in place (targets, weights, scheduler, health checks)
// without touching their established connections. A listener that cannot start (a bad
// spec, an address in use) is reported in the joined error and retried by the next Apply;
// the others are applied regardless.
func (d *DataPlane) Apply(spec Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("data plane is closed")
	}
	var errs []error
	want := map[string]*ListenerSpec{}
	for i := range spec.Listeners {
		ls := &spec.Listeners[i]
		if err := ls.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := want[ls.ID]; dup {
			errs = append(errs, fmt.Errorf("listener %s appears twice", ls.ID))
			continue
		}
		want[ls.ID] = ls
	}
	for id, l := range d.listeners {
		ls, ok := want[id]
		if !ok || ls.Protocol != l.protocol || ls.Address != l.addr || ls.Netns != l.netns {
			l.stop()
			delete(d.listeners, id)
			klog.V(2).InfoS("Data plane listener stopped", "listener", id, "address", l.addr)
		}
	}
	for id, ls := range want {
		if l, ok := d.listeners[id]; ok {
			l.update(ls)
			continue
		}
		l, err := startListener(ls, &d.opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("start listener %s on %s/%s: %w", id, ls.Protocol, ls.Address, err))
			continue
		}
		d.listeners[id] = l
		klog.V(2).InfoS("Data plane listener started", "listener", id, "protocol", ls.Protocol, "address", ls.Address)
	}
	return errors.Join(errs...)
}

// Address reports where the listener id is serving, if it is.
func (d *DataPlane) Address(listenerID string) (netip.AddrPort, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.listeners[listenerID]
	if !ok {
		return netip.AddrPort{}, false
	}
	return l.addr, true
}

// TargetHealth reports what the health checks concluded about target on listener id.
func (d *DataPlane) TargetHealth(listenerID string, target netip.AddrPort) (Health, bool) {
	d.mu.Lock()
	l, ok := d.listeners[listenerID]
	d.mu.Unlock()
	if !ok {
		return HealthUnknown, false
	}
	return l.health(target)
}

// Close stops every listener, ends every proxied connection and health check, and waits
// (up to Options.CloseTimeout) for their goroutines.
func (d *DataPlane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	ls := d.listeners
	d.listeners = map[string]*listener{}
	d.mu.Unlock()
	for _, l := range ls {
		l.stop()
	}
	deadline := time.After(d.opts.CloseTimeout)
	for _, l := range ls {
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-deadline:
			return fmt.Errorf("data plane: listener %s still has goroutines after %s", l.id, d.opts.CloseTimeout)
		}
	}
	return nil
}
