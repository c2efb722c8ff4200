package agent

import (
	"encoding/json"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"

	"github.com/stratus-cloud/stratus/cni"
)

// PodCIDR picks the node's IPv4 podCIDR: the first IPv4 entry of spec.podCIDRs,
// else spec.podCIDR. Empty when the node has none yet.
func PodCIDR(node *corev1.Node) string {
	for _, c := range node.Spec.PodCIDRs {
		if ip, _, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
			return c
		}
	}
	if ip, _, err := net.ParseCIDR(node.Spec.PodCIDR); err == nil && ip.To4() != nil {
		return node.Spec.PodCIDR
	}
	return ""
}

type pluginConf struct {
	Type               string   `json:"type"`
	Bridge             string   `json:"bridge"`
	Subnet             string   `json:"subnet"`
	MTU                int      `json:"mtu,omitempty"`
	HairpinMode        bool     `json:"hairpinMode"`
	IPMasq             bool     `json:"ipMasq"`
	NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs,omitempty"`
	DataDir            string   `json:"dataDir"`
}

type confList struct {
	CNIVersion  string       `json:"cniVersion"`
	CNIVersions []string     `json:"cniVersions"`
	Name        string       `json:"name"`
	Plugins     []pluginConf `json:"plugins"`
}

// Render builds the conflist for podCIDR, validated by the plugin's own parser so
// the agent never writes a file the plugin would reject.
func Render(o Options, podCIDR string) ([]byte, error) {
	o.setDefaults()
	p := pluginConf{
		Type: cni.PluginType, Bridge: o.Bridge, Subnet: podCIDR, MTU: o.MTU,
		HairpinMode: o.HairpinMode, IPMasq: o.IPMasq, NonMasqueradeCIDRs: o.NonMasqueradeCIDRs, DataDir: o.DataDir,
	}
	list := confList{CNIVersion: CNIVersion, CNIVersions: CNIVersions, Name: o.NetworkName, Plugins: []pluginConf{p}}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render conflist: %w", err)
	}
	// Check the plugin entry the way the runtime will hand it to the plugin.
	single, err := json.Marshal(struct {
		pluginConf
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
	}{p, CNIVersions[len(CNIVersions)-1], o.NetworkName})
	if err != nil {
		return nil, fmt.Errorf("render conflist: %w", err)
	}
	if _, err := cni.ParseConfig(single); err != nil {
		return nil, fmt.Errorf("render conflist for podCIDR %q: %w", podCIDR, err)
	}
	return append(out, '\n'), nil
}
