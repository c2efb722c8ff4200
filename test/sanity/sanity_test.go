package sanity_test

import (
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/stratus-cloud/stratus/csi"
)

// sanityAttachLimit is the per-node limit the sanity driver reports, low so that the
// attach-limit spec attaches few loop devices.
const sanityAttachLimit = 3

// TestSanity runs every csi-sanity spec against the driver (mode all) over a unix
// socket, with the data plane: NodeStage formats a loop device and mounts it.
func TestSanity(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.startDriver("ins-node0001", csi.ModeAll, sanityAttachLimit)

	cfg := sanity.NewTestConfig()
	cfg.Address = d.endpoint
	cfg.TargetPath = filepath.Join(e.dir, "target")
	cfg.StagingPath = filepath.Join(e.dir, "staging")
	cfg.TestVolumeSize = 10 * csi.GiB
	cfg.TestVolumeExpandSize = 20 * csi.GiB
	cfg.IdempotentCount = 3
	cfg.TestNodeVolumeAttachLimit = true
	sanity.Test(t, cfg)
}
