package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// The masquerade setup of one network is one nat chain plus one jump from
// POSTROUTING for traffic from the podCIDR. The chain returns early for the
// podCIDR, the cluster and VPC CIDRs (nonMasqueradeCIDRs) and multicast, and
// masquerades the rest: only traffic leaving the cluster and the VPC is NATed.
// Rules are per node, not per pod, so ADD and DEL cost at most a listing.

const masqMarkerFile = "masq"

func masqChain(network string) string {
	sum := sha256.Sum256([]byte(network))
	return "STRATUS-MASQ-" + strings.ToUpper(hex.EncodeToString(sum[:])[:8])
}

func masqComment(network string) string { return "stratus-bridge:" + network }

type masq struct {
	network string
	subnet  *net.IPNet
	nonMasq []*net.IPNet
	// marker records in the IPAM dir that rules were installed, so DEL can skip
	// iptables entirely when there is nothing to remove.
	marker string
	ipt    *iptables.IPTables
}

func newMasq(c *NetConf, store *Store) *masq {
	return &masq{network: c.Name, subnet: c.subnet, nonMasq: c.nonMasq, marker: filepath.Join(store.Dir(), masqMarkerFile)}
}

func (m *masq) iptables() (*iptables.IPTables, error) {
	if m.ipt != nil {
		return m.ipt, nil
	}
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(30))
	if err != nil {
		return nil, fmt.Errorf("masquerade for network %s: iptables: %w", m.network, err)
	}
	m.ipt = ipt
	return ipt, nil
}

func (m *masq) chainRules() []string {
	chain := masqChain(m.network)
	lines := []string{"-N " + chain}
	seen := map[string]bool{}
	for _, n := range append([]*net.IPNet{m.subnet}, m.nonMasq...) {
		if seen[n.String()] {
			continue
		}
		seen[n.String()] = true
		lines = append(lines, fmt.Sprintf("-A %s -d %s -j RETURN", chain, n))
	}
	return append(lines, fmt.Sprintf("-A %s ! -d 224.0.0.0/4 -j MASQUERADE", chain))
}

func (m *masq) jumpRule() string {
	return fmt.Sprintf("-A POSTROUTING -s %s -m comment --comment %q -j %s", m.subnet, masqComment(m.network), masqChain(m.network))
}

// ensure installs or repairs the rules; when they already match it only lists.
func (m *masq) ensure() error {
	ipt, err := m.iptables()
	if err != nil {
		return err
	}
	chain := masqChain(m.network)
	want := m.chainRules()
	have, err := ipt.List("nat", chain)
	if err != nil {
		if !isNotExist(err) {
			return fmt.Errorf("masquerade for network %s: list chain %s: %w", m.network, chain, err)
		}
		if err := ipt.NewChain("nat", chain); err != nil && !isChainExists(err) {
			return fmt.Errorf("masquerade for network %s: create chain %s: %w", m.network, chain, err)
		}
		have = []string{"-N " + chain}
	}
	if !equalLines(have, want) {
		if err := ipt.ClearChain("nat", chain); err != nil {
			return fmt.Errorf("masquerade for network %s: clear chain %s: %w", m.network, chain, err)
		}
		for _, line := range want[1:] {
			if err := ipt.Append("nat", chain, splitRule(line)[2:]...); err != nil {
				return fmt.Errorf("masquerade for network %s: %s: %w", m.network, line, err)
			}
		}
	}
	post, err := ipt.List("nat", "POSTROUTING")
	if err != nil {
		return fmt.Errorf("masquerade for network %s: list POSTROUTING: %w", m.network, err)
	}
	jump, found := m.jumpRule(), false
	for _, line := range post {
		if !strings.HasSuffix(line, " -j "+chain) {
			continue
		}
		if line == jump && !found {
			found = true
			continue
		}
		// A jump for an earlier podCIDR, or a duplicate.
		if err := ipt.Delete("nat", "POSTROUTING", splitRule(line)[2:]...); err != nil && !isNotExist(err) {
			return fmt.Errorf("masquerade for network %s: delete stale %s: %w", m.network, line, err)
		}
	}
	if !found {
		if err := ipt.Append("nat", "POSTROUTING", splitRule(jump)[2:]...); err != nil {
			return fmt.Errorf("masquerade for network %s: %s: %w", m.network, jump, err)
		}
	}
	if _, err := os.Stat(m.marker); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(m.marker, nil, 0o600); err != nil {
			return fmt.Errorf("masquerade for network %s: marker: %w", m.network, err)
		}
	}
	return nil
}

// remove deletes the jump and the chain. With force unset it trusts the marker and
// costs nothing when no rules were installed; GC forces a real look.
func (m *masq) remove(force bool) error {
	if !force {
		if _, err := os.Stat(m.marker); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	ipt, err := m.iptables()
	if err != nil {
		return err
	}
	chain := masqChain(m.network)
	post, err := ipt.List("nat", "POSTROUTING")
	if err != nil {
		return fmt.Errorf("masquerade for network %s: list POSTROUTING: %w", m.network, err)
	}
	for _, line := range post {
		if strings.HasSuffix(line, " -j "+chain) {
			if err := ipt.Delete("nat", "POSTROUTING", splitRule(line)[2:]...); err != nil && !isNotExist(err) {
				return fmt.Errorf("masquerade for network %s: delete %s: %w", m.network, line, err)
			}
		}
	}
	if err := ipt.ClearAndDeleteChain("nat", chain); err != nil && !isNotExist(err) {
		return fmt.Errorf("masquerade for network %s: delete chain %s: %w", m.network, chain, err)
	}
	if err := os.Remove(m.marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("masquerade for network %s: marker: %w", m.network, err)
	}
	return nil
}

func isNotExist(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && e.IsNotExist()
}

func isChainExists(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && e.ExitStatus() == 1 && strings.Contains(e.Error(), "exists")
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.TrimSpace(a[i]) != b[i] {
			return false
		}
	}
	return true
}

// splitRule splits an `iptables -S` line into arguments, honouring the double
// quotes iptables puts around comments.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
