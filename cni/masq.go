package cni

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
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

var errNoIPTables = errors.New("iptables is not installed on the node (needed for ipMasq)")

// natRules lists the whole nat table with one exec: the chain's rules and the
// POSTROUTING jumps come from the same listing, and a missing chain simply has
// no lines (iptables-nft reports a missing chain as "incompatible", so asking for
// it by name cannot tell "absent" from "broken").
func natRules() ([]string, error) {
	path, err := exec.LookPath("iptables")
	if err != nil {
		return nil, errNoIPTables
	}
	var stderr bytes.Buffer
	cmd := exec.Command(path, "-w", "30", "-t", "nat", "-S")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("iptables -t nat -S: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// split separates the listing into this network's chain and the POSTROUTING
// rules that jump to it.
func (m *masq) split(rules []string) (chainLines, jumps []string, chainExists bool) {
	chain := masqChain(m.network)
	for _, l := range rules {
		l = strings.TrimSpace(l)
		switch {
		case l == "-N "+chain:
			chainExists = true
			chainLines = append(chainLines, l)
		case strings.HasPrefix(l, "-A "+chain+" "):
			chainLines = append(chainLines, l)
		case strings.HasPrefix(l, "-A POSTROUTING ") && strings.HasSuffix(l, " -j "+chain):
			jumps = append(jumps, l)
		}
	}
	return chainLines, jumps, chainExists
}

// ensure installs or repairs the rules; when they already match it costs one
// listing.
func (m *masq) ensure() error {
	rules, err := natRules()
	if err != nil {
		return fmt.Errorf("masquerade for network %s: %w", m.network, err)
	}
	chain := masqChain(m.network)
	have, jumps, exists := m.split(rules)
	want, jump := m.chainRules(), m.jumpRule()
	if equalLines(have, want) && len(jumps) == 1 && jumps[0] == jump {
		return m.mark()
	}
	ipt, err := m.iptables()
	if err != nil {
		return err
	}
	if !equalLines(have, want) {
		if !exists {
			if err := ipt.NewChain("nat", chain); err != nil {
				return fmt.Errorf("masquerade for network %s: create chain %s: %w", m.network, chain, err)
			}
		} else if err := ipt.ClearChain("nat", chain); err != nil {
			return fmt.Errorf("masquerade for network %s: clear chain %s: %w", m.network, chain, err)
		}
		for _, line := range want[1:] {
			if err := ipt.Append("nat", chain, splitRule(line)[2:]...); err != nil {
				return fmt.Errorf("masquerade for network %s: %s: %w", m.network, line, err)
			}
		}
	}
	found := false
	for _, line := range jumps {
		if line == jump && !found {
			found = true
			continue
		}
		// A jump for an earlier podCIDR, or a duplicate.
		if err := ipt.Delete("nat", "POSTROUTING", splitRule(line)[2:]...); err != nil {
			return fmt.Errorf("masquerade for network %s: delete stale %s: %w", m.network, line, err)
		}
	}
	if !found {
		if err := ipt.Append("nat", "POSTROUTING", splitRule(jump)[2:]...); err != nil {
			return fmt.Errorf("masquerade for network %s: %s: %w", m.network, jump, err)
		}
	}
	return m.mark()
}

// verify reports whether the rules are exactly as ensure would leave them.
func (m *masq) verify() error {
	rules, err := natRules()
	if err != nil {
		return fmt.Errorf("masquerade for network %s: %w", m.network, err)
	}
	have, jumps, _ := m.split(rules)
	if !equalLines(have, m.chainRules()) {
		return fmt.Errorf("masquerade for network %s: chain %s is %q, want %q", m.network, masqChain(m.network), have, m.chainRules())
	}
	if len(jumps) != 1 || jumps[0] != m.jumpRule() {
		return fmt.Errorf("masquerade for network %s: POSTROUTING jumps are %q, want %q", m.network, jumps, m.jumpRule())
	}
	return nil
}

func (m *masq) mark() error {
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
	rules, err := natRules()
	if errors.Is(err, errNoIPTables) {
		rules, err = nil, nil // no iptables, no rules to remove
	}
	if err != nil {
		return fmt.Errorf("masquerade for network %s: %w", m.network, err)
	}
	_, jumps, exists := m.split(rules)
	if len(jumps) > 0 || exists {
		ipt, err := m.iptables()
		if err != nil {
			return err
		}
		for _, line := range jumps {
			if err := ipt.Delete("nat", "POSTROUTING", splitRule(line)[2:]...); err != nil {
				return fmt.Errorf("masquerade for network %s: delete %s: %w", m.network, line, err)
			}
		}
		if exists {
			chain := masqChain(m.network)
			if err := ipt.ClearAndDeleteChain("nat", chain); err != nil {
				return fmt.Errorf("masquerade for network %s: delete chain %s: %w", m.network, chain, err)
			}
		}
	}
	if err := os.Remove(m.marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("masquerade for network %s: marker: %w", m.network, err)
	}
	return nil
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
