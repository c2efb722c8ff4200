package cvm

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// Module serves the CVM API.
type Module struct {
	w       *api.World
	delays  Delays
	vpcs    *store.Table[vpc.VPC]
	subnets *store.Table[vpc.Subnet]
}

// Delays says how long the instance state machine's transitions take. Zero (unit tests)
// makes every transition immediate; benchmarks and the sandbox use realistic values.
type Delays struct {
	InstanceBoot time.Duration // PENDING -> RUNNING, STARTING -> RUNNING
	InstanceStop time.Duration // STOPPING -> STOPPED
	Terminate    time.Duration // SHUTDOWN/TERMINATING -> gone
}

// Options configure the module.
type Options struct {
	Delays Delays
}

// New is the module with immediate transitions.
func New(w *api.World) (api.Module, error) { return NewWithOptions(w, Options{}) }

// WithOptions returns a module constructor using opts, for fakecloud.Config.Modules.
func WithOptions(opts Options) api.NewModule {
	return func(w *api.World) (api.Module, error) { return NewWithOptions(w, opts) }
}

// NewWithOptions registers the CVM tables (and reads the VPC ones) in w's store.
func NewWithOptions(w *api.World, opts Options) (*Module, error) {
	d := opts.Delays
	if d.InstanceBoot < 0 || d.InstanceStop < 0 || d.Terminate < 0 {
		return nil, fmt.Errorf("cvm: delays must not be negative, got %+v", d)
	}
	registerAll(w.Store)
	return &Module{w: w, delays: d, vpcs: vpc.VPCs(w.Store), subnets: vpc.Subnets(w.Store)}, nil
}

// Seed sections the CVM module owns.
const (
	SeedKey       = "instances"
	DelaysSeedKey = "instanceDelays"
)

// SeedInstance is one CVM instance. PrivateIP empty means "allocate from the subnet".
// Local marks an instance that is this machine, so the data plane attaches its disks here.
type SeedInstance struct {
	InstanceID   string            `json:"instanceId"`
	Name         string            `json:"name,omitempty"`
	Zone         string            `json:"zone"`
	InstanceType string            `json:"instanceType,omitempty"`
	ImageID      string            `json:"imageId,omitempty"`
	VpcID        string            `json:"vpcId,omitempty"`
	SubnetID     string            `json:"subnetId"`
	PrivateIP    string            `json:"privateIp,omitempty"`
	PublicIP     string            `json:"publicIp,omitempty"`
	State        string            `json:"state,omitempty"` // default RUNNING
	Tags         map[string]string `json:"tags,omitempty"`
	Local        bool              `json:"local,omitempty"`
}

// SetSeed puts instances into s's instance section.
func SetSeed(s *api.Seed, instances []SeedInstance) { s.Set(SeedKey, instances) }

// SeedInstances reads s's instance section (nil when there is none).
func SeedInstances(s *api.Seed) ([]SeedInstance, error) {
	var out []SeedInstance
	_, err := s.Section(SeedKey, &out)
	return out, err
}

// SeedDelays reads the instance delays a seed file sets (instanceDelays: {instanceBoot:
// 30s, ...}); ok is false when it sets none.
func SeedDelays(s *api.Seed) (d Delays, ok bool, err error) {
	ok, err = s.Durations(DelaysSeedKey, map[string]*time.Duration{
		"instanceBoot": &d.InstanceBoot, "instanceStop": &d.InstanceStop, "terminate": &d.Terminate,
	})
	return d, ok, err
}

// API lists the CVM actions.
func (m *Module) API() api.Service {
	return api.Service{Name: cvm.Service, Version: cvm.Version, Actions: map[string]api.Handler{
		"RunInstances":                m.runInstances,
		"DescribeInstances":           m.describeInstances,
		"StopInstances":               m.stopInstances,
		"StartInstances":              m.startInstances,
		"TerminateInstances":          m.terminateInstances,
		"DescribeZones":               m.describeZones,
		"DescribeInstanceTypeConfigs": m.describeInstanceTypeConfigs,
	}}
}

var imageIDPattern = regexp.MustCompile(`^img-[a-z0-9]{8}$`)

// seedImage is the image of seeded instances that name none.
const seedImage = "img-stratus0"

// Seed imports the seed's instances (after the VPC module imported their subnets). An
// instance names its subnet; its VPC follows from it. PrivateIP empty leases the next
// free address; State defaults to RUNNING and may be RUNNING or STOPPED.
func (m *Module) Seed(tx *store.Tx, s *api.Seed) error {
	instances, err := SeedInstances(s)
	if err != nil {
		return err
	}
	now := m.w.Now()
	for i, si := range instances {
		id := si.InstanceID
		if id == "" {
			id = api.NewID("ins")
		}
		if !wellFormedID(id) {
			return fmt.Errorf("instances[%d]: id %q is not an instance ID (ins-...)", i, id)
		}
		if _, dup := instancesT.Get(tx, id); dup {
			return fmt.Errorf("instances[%d]: instance %s is declared twice", i, id)
		}
		if _, ok := m.w.Zone(si.Zone); !ok {
			return fmt.Errorf("instance %s: zone %q is not a zone of region %s", id, si.Zone, m.w.Region)
		}
		typ := si.InstanceType
		if typ == "" {
			typ = defaultInstanceType
		}
		if _, ok := catalogByName[typ]; !ok {
			return fmt.Errorf("instance %s: instance type %q is not in the catalog", id, typ)
		}
		img := si.ImageID
		if img == "" {
			img = seedImage
		}
		if !imageIDPattern.MatchString(img) {
			return fmt.Errorf("instance %s: image %q does not look like img-xxxxxxxx", id, img)
		}
		if si.SubnetID == "" {
			return fmt.Errorf("instance %s: subnetId is required", id)
		}
		sn, ok := m.subnets.Get(tx, si.SubnetID)
		if !ok {
			return fmt.Errorf("instance %s: subnet %s does not exist", id, si.SubnetID)
		}
		if si.VpcID != "" && si.VpcID != sn.VpcId {
			return fmt.Errorf("instance %s: subnet %s belongs to VPC %s, not %s", id, sn.SubnetId, sn.VpcId, si.VpcID)
		}
		if sn.Zone != si.Zone {
			return fmt.Errorf("instance %s: subnet %s is in zone %s, not %s", id, sn.SubnetId, sn.Zone, si.Zone)
		}
		state := si.State
		switch state {
		case "":
			state = cvm.StateRunning
		case cvm.StateRunning, cvm.StateStopped:
		default:
			return fmt.Errorf("instance %s: seed state must be RUNNING or STOPPED, got %q", id, state)
		}
		ip, err := vpc.AllocateIP(tx, sn.SubnetId, si.PrivateIP)
		if err != nil {
			return fmt.Errorf("instance %s: private IP: %w", id, err)
		}
		if si.PublicIP != "" {
			a, err := netip.ParseAddr(si.PublicIP)
			if err != nil || !a.Is4() {
				return fmt.Errorf("instance %s: public IP %q is not an IPv4 address", id, si.PublicIP)
			}
			if _, taken := publicIPsT.Get(tx, a.String()); taken {
				return fmt.Errorf("instance %s: public IP %s is already used", id, a)
			}
			if err := publicIPsT.Put(tx, a.String(), &publicIP{InstanceId: id}); err != nil {
				return err
			}
		}
		var tags []cloudapi.Tag
		for _, k := range slices.Sorted(maps.Keys(si.Tags)) {
			tags = append(tags, cloudapi.Tag{Key: k, Value: si.Tags[k]})
		}
		name := si.Name
		if name == "" {
			name = id
		}
		in := &Instance{
			InstanceId: id, InstanceName: name, InstanceType: typ, ImageId: img, Zone: si.Zone,
			VpcId: sn.VpcId, SubnetId: sn.SubnetId, PrivateIP: ip, PublicIP: si.PublicIP, Tags: tags,
			Local: si.Local, ChargeType: "POSTPAID_BY_HOUR", SystemDiskType: "CLOUD_PREMIUM", SystemDiskSize: 50,
			Uuid: uuid.NewString(), CreatedTime: now, LaunchIndex: i, State: state, LatestOperation: "RunInstances",
		}
		if err := m.put(tx, in); err != nil {
			return err
		}
	}
	return nil
}

// wellFormedID accepts "ins-" and 1-32 lowercase letters and digits (real IDs have 8;
// seeds may use readable ones).
func wellFormedID(id string) bool { return api.WellFormedID(id, "ins-") }

// put stores a new instance and indexes its private address.
func (m *Module) put(tx *store.Tx, in *Instance) error {
	if err := instancesT.Put(tx, in.InstanceId, in); err != nil {
		return err
	}
	idx := ipIndex{}
	if old, ok := ipIndexT.Get(tx, in.PrivateIP); ok {
		idx.InstanceIds = slices.Clone(old.InstanceIds)
	}
	idx.InstanceIds = append(idx.InstanceIds, in.InstanceId)
	return ipIndexT.Put(tx, in.PrivateIP, &idx)
}

// remove deletes an instance's record, index entry and addresses.
func (m *Module) remove(tx *store.Tx, in *Instance) error {
	if old, ok := ipIndexT.Get(tx, in.PrivateIP); ok {
		ids := slices.DeleteFunc(slices.Clone(old.InstanceIds), func(id string) bool { return id == in.InstanceId })
		var err error
		if len(ids) == 0 {
			err = ipIndexT.Delete(tx, in.PrivateIP)
		} else {
			err = ipIndexT.Put(tx, in.PrivateIP, &ipIndex{InstanceIds: ids})
		}
		if err != nil {
			return err
		}
	}
	if in.PublicIP != "" {
		if err := publicIPsT.Delete(tx, in.PublicIP); err != nil {
			return err
		}
	}
	if _, ok := m.subnets.Get(tx, in.SubnetId); ok {
		if err := vpc.ReleaseIP(tx, in.SubnetId, in.PrivateIP); err != nil {
			return err
		}
	}
	if err := reapT.Delete(tx, in.InstanceId); err != nil {
		return err
	}
	return instancesT.Delete(tx, in.InstanceId)
}

// reap removes the instances whose termination has completed by now, so their
// addresses can be leased again. Every CVM write calls it first.
func (m *Module) reap(tx *store.Tx, now time.Time) error {
	for _, e := range reapT.List(tx) {
		if now.Before(e.At) {
			continue
		}
		in, ok := instancesT.Get(tx, e.InstanceId)
		if !ok {
			if err := reapT.Delete(tx, e.InstanceId); err != nil {
				return err
			}
			continue
		}
		if err := m.remove(tx, in); err != nil {
			return fmt.Errorf("reap instance %s: %w", in.InstanceId, err)
		}
	}
	return nil
}
