package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Defaults applied when the config leaves a key out.
const (
	DefaultBridge  = "cbr0"
	DefaultDataDir = "/var/lib/cni/stratus"
	// PluginType is the `type` a conflist uses for this plugin, and so also the
	// file name the binary is installed under in the runtime's CNI bin dir.
	PluginType = "stratus-bridge"
)

// NetConf is the plugin configuration. The agent writes it into the conflist; users
// and tests may write it by hand.
type NetConf struct {
	types.PluginConf

	Bridge             string   `json:"bridge,omitempty"`
	Subnet             string   `json:"subnet,omitempty"`
	MTU                int      `json:"mtu,omitempty"`
	HairpinMode        bool     `json:"hairpinMode,omitempty"`
	IPMasq             bool     `json:"ipMasq,omitempty"`
	NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs,omitempty"`
	DataDir            string   `json:"dataDir,omitempty"`

	// Parsed forms, filled by ParseConfig.
	subnet  *net.IPNet
	gateway net.IP
	nonMasq []*net.IPNet
}

// SubnetNet is the parsed podCIDR, nil when the config has none yet.
func (c *NetConf) SubnetNet() *net.IPNet { return c.subnet }

// Gateway is the bridge address: the first IP of the podCIDR.
func (c *NetConf) Gateway() net.IP { return c.gateway }

// configError is how every config problem leaves the plugin: CNI code 7 with the
// offending field first in the message, so a user with a typo sees which key.
func configError(field, format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig,
		fmt.Sprintf("invalid config: field %s: %s", field, fmt.Sprintf(format, a...)), "")
}

// ParseConfig decodes and validates a plugin config. A missing subnet is not an
// error here (STATUS and DEL must work before the node has a podCIDR); RequireSubnet
// makes it one for the commands that need it.
func ParseConfig(data []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "(top level)"
			}
			return nil, configError(field, "expected %s, got JSON %s", te.Type, te.Value)
		}
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("invalid config: %v", err), "")
	}
	if c.CNIVersion == "" {
		return nil, configError("cniVersion", "required")
	}
	if ok, err := version.GreaterThanOrEqualTo(c.CNIVersion, "0.3.1"); err != nil || !ok {
		return nil, configError("cniVersion", "%q is not supported (0.3.1 to %s)", c.CNIVersion, version.Current())
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if err := validateIfName(c.Bridge); err != nil {
		return nil, configError("bridge", "%q: %v", c.Bridge, err)
	}
	if c.Subnet != "" {
		ip, n, err := net.ParseCIDR(c.Subnet)
		if err != nil {
			return nil, configError("subnet", "%q is not a CIDR", c.Subnet)
		}
		if ip.To4() == nil {
			return nil, configError("subnet", "%q: only IPv4 podCIDRs are supported", c.Subnet)
		}
		if !ip.Equal(n.IP) {
			return nil, configError("subnet", "%q is not a network address (did you mean %s?)", c.Subnet, n)
		}
		if ones, _ := n.Mask.Size(); ones > 30 {
			return nil, configError("subnet", "%q is too small: a /%d has no room for a gateway and a pod", c.Subnet, ones)
		}
		n.IP = n.IP.To4()
		c.subnet = n
		c.gateway = nthIP(n, 1)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		return nil, configError("mtu", "%d is out of range (576 to 65535, or 0 for the uplink's MTU)", c.MTU)
	}
	for i, s := range c.NonMasqueradeCIDRs {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, configError(fmt.Sprintf("nonMasqueradeCIDRs[%d]", i), "%q is not a CIDR", s)
		}
		if n.IP.To4() == nil {
			return nil, configError(fmt.Sprintf("nonMasqueradeCIDRs[%d]", i), "%q: only IPv4 is supported", s)
		}
		c.nonMasq = append(c.nonMasq, n)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if !filepath.IsAbs(c.DataDir) {
		return nil, configError("dataDir", "%q is not an absolute path", c.DataDir)
	}
	c.DataDir = filepath.Clean(c.DataDir)
	return c, nil
}

// RequireSubnet reports the missing podCIDR as a config error naming the field.
func (c *NetConf) RequireSubnet() error {
	if c.subnet == nil {
		return configError("subnet", "required (the node has no podCIDR in this config yet)")
	}
	return nil
}

func validateIfName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("not a valid interface name")
	case len(name) > 15:
		return errors.New("longer than 15 characters")
	case strings.ContainsAny(name, "/: \t\n"):
		return errors.New("contains '/', ':' or whitespace")
	}
	return nil
}

// nthIP returns the n-th address of a network (0 is the network address).
func nthIP(n *net.IPNet, i uint32) net.IP {
	base := n.IP.To4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += i
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

// hostCount is the number of addresses in the network, broadcast included.
func hostCount(n *net.IPNet) uint32 {
	ones, bits := n.Mask.Size()
	return uint32(1) << uint(bits-ones)
}
