package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// syncCheckLocked makes b's checker match the listener's health spec: started when
// checks are on, restarted when their settings changed, stopped when they are off. The
// health b already has is kept across a restart, so changing the interval does not
// briefly hand traffic to a target known to be down.
func (l *listener) syncCheckLocked(b *backend) {
	hs := l.spec.Health
	if !hs.Enabled {
		l.stopCheckLocked(b)
		b.health.Store(int32(HealthUnknown))
		return
	}
	if b.checkCancel != nil && reflect.DeepEqual(b.checkSpec, hs) {
		return
	}
	l.stopCheckLocked(b)
	ctx, cancel := context.WithCancel(l.ctx)
	b.checkSpec, b.checkCancel = hs, cancel
	l.wg.Add(1)
	go l.runCheck(ctx, b, hs, l.protocol)
}

func (l *listener) stopCheckLocked(b *backend) {
	if b.checkCancel != nil {
		b.checkCancel()
		b.checkCancel = nil
	}
}

func (l *listener) runCheck(ctx context.Context, b *backend, hs HealthSpec, protocol string) {
	defer l.wg.Done()
	t := time.NewTicker(hs.Interval)
	defer t.Stop()
	oks, fails := 0, 0
	for {
		err := probe(ctx, protocol, b.addr, hs)
		if ctx.Err() != nil {
			return
		}
		before := Health(b.health.Load())
		after := before
		// A new target is presumed healthy: one pass confirms it, and it takes the full
		// UnhealthyThreshold of failures to take it (or any healthy target) out, so one
		// slow probe on a busy machine never drops a good target.
		if err == nil {
			oks, fails = oks+1, 0
			if before == HealthUnknown || (before == Unhealthy && oks >= hs.HealthyThreshold) {
				after = Healthy
			}
		} else {
			oks, fails = 0, fails+1
			if before != Unhealthy && fails >= hs.UnhealthyThreshold {
				after = Unhealthy
			}
		}
		if after != before {
			b.health.Store(int32(after))
			klog.InfoS("Target health changed", "listener", l.id, "target", b.addr, "health", after, "lastError", errString(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probe runs one check against target and returns nil when it passed.
func probe(ctx context.Context, protocol string, target netip.AddrPort, hs HealthSpec) error {
	addr := target
	if hs.Port != 0 {
		addr = netip.AddrPortFrom(target.Addr(), hs.Port)
	}
	// Targets were checked when they joined (loopback or a reachable prefix); the check
	// port changes only the port.
	ctx, cancel := context.WithTimeout(ctx, hs.Timeout)
	defer cancel()
	kind := hs.Type
	if kind == "" {
		kind = CheckTCP
		if protocol == UDP {
			kind = CheckUDP
		}
	}
	switch {
	case kind == CheckPing:
		return nil
	case protocol == UDP:
		return probeUDP(ctx, addr, hs)
	case kind == CheckHTTP:
		return probeHTTP(ctx, addr, hs)
	case kind == CheckCustom:
		return probeCustomTCP(ctx, addr, hs)
	default:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func probeHTTP(ctx context.Context, addr netip.AddrPort, hs HealthSpec) error {
	method := hs.HTTPMethod
	if method == "" {
		method = http.MethodHead
	}
	path := hs.HTTPPath
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr.String()+path, nil)
	if err != nil {
		return err
	}
	if hs.HTTPHost != "" {
		req.Host = hs.HTTPHost
	}
	req.Header.Set("User-Agent", "fakecloud-clb-healthcheck")
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// A health check judges the answer it gets, never a redirect's target.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	class := resp.StatusCode / 100
	codes := hs.HTTPCodes
	if codes == 0 {
		codes = 31
	}
	if class < 1 || class > 5 || codes&(1<<(class-1)) == 0 {
		return fmt.Errorf("HTTP status %d is not in the healthy classes %05b", resp.StatusCode, codes)
	}
	return nil
}

func probeCustomTCP(ctx context.Context, addr netip.AddrPort, hs HealthSpec) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if len(hs.Send) > 0 {
		if _, err := c.Write(hs.Send); err != nil {
			return err
		}
	}
	if len(hs.Recv) == 0 {
		return nil
	}
	var got []byte
	buf := make([]byte, 1024)
	for !bytes.Contains(got, hs.Recv) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("expected %q, got %q: %w", hs.Recv, got, err)
		}
		if len(got) > 64<<10 {
			return fmt.Errorf("expected %q in the first 64 KiB of the answer", hs.Recv)
		}
	}
	return nil
}

// probeUDP sends one datagram. A target whose port is closed answers with ICMP port
// unreachable, which a connected UDP socket reports as ECONNREFUSED: that is a failure.
// Silence until the timeout is a pass unless an answer (Recv) is required, because a UDP
// service need not answer an unknown datagram.
func probeUDP(ctx context.Context, addr netip.AddrPort, hs HealthSpec) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(hs.Send); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("port unreachable: %w", err)
	case errors.As(err, &ne) && ne.Timeout():
		if len(hs.Recv) > 0 {
			return fmt.Errorf("no answer within %s", hs.Timeout)
		}
		return nil
	case err != nil:
		return err
	}
	if len(hs.Recv) > 0 && !bytes.Contains(buf[:n], hs.Recv) {
		return fmt.Errorf("expected %q, got %q", hs.Recv, buf[:n])
	}
	return nil
}
