package agent

// Node is the part of a core/v1 Node the agent reads. The agent decodes the API's
// JSON itself instead of linking client-go: the same binary is the CNI plugin, run
// once per pod ADD/DEL, and client-go's package initialisation would triple the
// plugin's start-up cost.
type Node struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR,omitempty"`
		PodCIDRs []string `json:"podCIDRs,omitempty"`
	} `json:"spec"`
}

// Name is the node's name.
func (n *Node) Name() string { return n.Metadata.Name }
