package cvm

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// Per-request limits of RunInstances (SDK v1.0.162 model docs; fakecloud/LIMITS.md).
const (
	maxInstanceCount        = 100 // pay-as-you-go
	maxPrepaidInstanceCount = 300
	maxNameChars            = 60 // including {R:x} patterns
	maxPrivateIPs           = 20
	maxDataDisks            = 21 // 1 local + 20 cloud
	maxUserData             = 16 << 10
	maxHostName             = 60 // Linux; Windows is [2, 15]
	// defaultInstanceQuota is the per-region instance quota ("instances-per-region").
	defaultInstanceQuota = 10000
)

var (
	systemDiskTypes = []string{"LOCAL_BASIC", "LOCAL_SSD", "CLOUD_BASIC", "CLOUD_SSD", "CLOUD_PREMIUM"}
	dataDiskTypes   = []string{"LOCAL_BASIC", "LOCAL_SSD", "LOCAL_NVME", "LOCAL_PRO", "CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_HSSD", "CLOUD_TSSD"}
	// tagResourceTypes: the model docs name instance and host, and say the tags can go to
	// the instance's disks too.
	tagResourceTypes = []string{"instance", "host", "disk"}
)

// publicPools are the documentation ranges public addresses come from.
var publicPools = []netip.Prefix{
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
}

var internetChargeTypes = map[string]bool{
	"": true, "BANDWIDTH_PREPAID": true, "TRAFFIC_POSTPAID_BY_HOUR": true,
	"BANDWIDTH_POSTPAID_BY_HOUR": true, "BANDWIDTH_PACKAGE": true,
}

// launch is a validated RunInstances request.
type launch struct {
	zone, typ, image, name, vpcID, subnetID, charge, token, diskType string
	diskSize                                                         int64
	count                                                            int
	ips                                                              []string
	public                                                           bool
	tags                                                             []cloudapi.Tag
	sgs                                                              []string
}

func (m *Module) runInstances(r *api.Request) (any, error) {
	in, err := api.Decode[cvm.RunInstancesRequest](r)
	if err != nil {
		return nil, err
	}
	l, err := m.validateRun(in)
	if err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, api.Errorf("DryRunOperation", "the request would have succeeded, but DryRun is set")
	}
	var ids []string
	err = m.w.Store.Update(func(tx *store.Tx) error {
		if err := m.reap(tx, r.Now); err != nil {
			return err
		}
		if l.token != "" {
			if rec, ok := tokensT.Get(tx, l.token); ok {
				ids = slices.Clone(rec.InstanceIds)
				return nil
			}
		}
		if err := m.checkNetwork(tx, l); err != nil {
			return err
		}
		quota := m.w.Limit("instances-per-region", defaultInstanceQuota)
		if have := instancesT.Len(tx); have+l.count > quota {
			return api.Errorf("LimitExceeded.InstanceQuota", "region %s has %d instances; %d more would pass the quota of %d", m.w.Region, have, l.count, quota)
		}
		ids = make([]string, 0, l.count)
		for i := range l.count {
			in, err := m.launchOne(tx, r, l, i)
			if err != nil {
				return err
			}
			ids = append(ids, in.InstanceId)
		}
		if l.token != "" {
			return tokensT.Put(tx, l.token, &tokenRecord{InstanceIds: ids, CreatedTime: r.Now})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cvm.RunInstancesResponse{InstanceIdSet: ids}, nil
}

// validateRun checks everything that does not need the store.
func (m *Module) validateRun(in *cvm.RunInstancesRequest) (*launch, error) {
	l := &launch{count: 1, typ: in.InstanceType, image: in.ImageId, token: in.ClientToken, charge: in.InstanceChargeType}
	if in.Placement == nil || in.Placement.Zone == "" {
		return nil, api.MissingParameter("Placement.Zone")
	}
	if _, ok := m.w.Zone(in.Placement.Zone); !ok {
		return nil, api.Errorf("InvalidZone.MismatchRegion", "parameter `Placement.Zone`: zone %q is not in region %s", in.Placement.Zone, m.w.Region)
	}
	l.zone = in.Placement.Zone
	if l.typ == "" {
		l.typ = defaultInstanceType
	}
	if _, ok := catalogByName[l.typ]; !ok {
		if !validTypeShape(l.typ) {
			return nil, api.Errorf("InvalidInstanceType.Malformed", "parameter `InstanceType`: %q is not of the form FAMILY.SIZE", l.typ)
		}
		return nil, api.Errorf("InvalidParameterValue.InstanceTypeNotFound", "parameter `InstanceType`: instance type %q is not sold in zone %s", l.typ, l.zone)
	}
	switch {
	case l.image == "":
		return nil, api.MissingParameter("ImageId")
	case !imageIDPattern.MatchString(l.image):
		return nil, api.Errorf("InvalidImageId.Malformed", "parameter `ImageId`: %q is not of the form img-xxxxxxxx", l.image)
	}
	if l.charge == "" {
		l.charge = "POSTPAID_BY_HOUR"
	}
	if err := api.OneOf("InstanceChargeType", l.charge, "PREPAID", "POSTPAID_BY_HOUR", "CDHPAID", "SPOTPAID"); err != nil {
		return nil, err
	}
	if l.charge == "CDHPAID" {
		return nil, api.Errorf(cloudapi.CodeUnsupportedOperation, "InstanceChargeType CDHPAID launches onto dedicated hosts, which this region does not sell")
	}
	if in.InstanceCount != nil {
		limit := int64(maxInstanceCount)
		if l.charge == "PREPAID" {
			limit = maxPrepaidInstanceCount
		}
		if n := *in.InstanceCount; n < 1 || n > limit {
			return nil, api.Errorf("InvalidParameterValue.Range", "parameter `InstanceCount` must be between 1 and %d for %s instances, got %d", limit, l.charge, n)
		}
		l.count = int(*in.InstanceCount)
	}
	if err := api.MaxChars("InvalidInstanceName.TooLong", "InstanceName", in.InstanceName, maxNameChars); err != nil {
		return nil, err
	}
	l.name = in.InstanceName
	if len(l.token) > api.MaxClientToken {
		return nil, api.Errorf("InvalidClientToken.TooLong", "parameter `ClientToken` is at most %d ASCII characters, got %d bytes", api.MaxClientToken, len(l.token))
	}
	if err := api.ClientToken("", "ClientToken", l.token); err != nil {
		return nil, err
	}
	if err := checkHostName(in.HostName); err != nil {
		return nil, err
	}
	if err := checkUserData(in.UserData); err != nil {
		return nil, err
	}
	if err := checkLogin(in.LoginSettings); err != nil {
		return nil, err
	}
	if len(in.DataDisks) > maxDataDisks {
		return nil, api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `DataDisks` takes at most %d disks, got %d", maxDataDisks, len(in.DataDisks))
	}
	for i, d := range in.DataDisks {
		if d.DiskType != "" {
			if err := api.OneOf(fmt.Sprintf("DataDisks.%d.DiskType", i), d.DiskType, dataDiskTypes...); err != nil {
				return nil, err
			}
		}
	}
	if err := checkPrepaid(l.charge, in.InstanceChargePrepaid); err != nil {
		return nil, err
	}
	l.diskType, l.diskSize = "CLOUD_PREMIUM", 50
	if d := in.SystemDisk; d != nil {
		if d.DiskType != "" {
			if err := api.OneOf("SystemDisk.DiskType", d.DiskType, systemDiskTypes...); err != nil {
				return nil, err
			}
			l.diskType = d.DiskType
		}
		if d.DiskSize != nil {
			if *d.DiskSize < 20 || *d.DiskSize > 1024 {
				return nil, api.Errorf("InvalidParameterValue.Range", "parameter `SystemDisk.DiskSize` must be between 20 and 1024 GB, got %d", *d.DiskSize)
			}
			l.diskSize = *d.DiskSize
		}
	}
	v := in.VirtualPrivateCloud
	switch {
	case v == nil || v.VpcId == "":
		return nil, api.MissingParameter("VirtualPrivateCloud.VpcId")
	case v.SubnetId == "":
		return nil, api.MissingParameter("VirtualPrivateCloud.SubnetId")
	case !api.WellFormedID(v.VpcId, "vpc-"):
		return nil, api.Errorf("InvalidParameterValue.VpcIdMalformed", "parameter `VirtualPrivateCloud.VpcId`: %q is not a VPC ID", v.VpcId)
	case !api.WellFormedID(v.SubnetId, "subnet-"):
		return nil, api.Errorf("InvalidParameterValue.SubnetIdMalformed", "parameter `VirtualPrivateCloud.SubnetId`: %q is not a subnet ID", v.SubnetId)
	case len(v.PrivateIpAddresses) > maxPrivateIPs:
		return nil, api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `VirtualPrivateCloud.PrivateIpAddresses` takes at most %d addresses, got %d", maxPrivateIPs, len(v.PrivateIpAddresses))
	case len(v.PrivateIpAddresses) > 0 && len(v.PrivateIpAddresses) != l.count:
		return nil, api.Errorf("InvalidParameterValue.AmountNotEqual", "parameter `VirtualPrivateCloud.PrivateIpAddresses` has %d addresses for %d instances", len(v.PrivateIpAddresses), l.count)
	}
	l.vpcID, l.subnetID = v.VpcId, v.SubnetId
	seen := map[string]bool{}
	for i, ip := range v.PrivateIpAddresses {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, api.Errorf("InvalidParameterValue.IPAddressMalformed", "parameter `VirtualPrivateCloud.PrivateIpAddresses.%d`: %q is not an IPv4 address", i, ip)
		}
		if seen[a.String()] {
			return nil, api.Errorf("InvalidParameterValue.Duplicate", "parameter `VirtualPrivateCloud.PrivateIpAddresses.%d`: %s is given twice", i, a)
		}
		seen[a.String()] = true
		l.ips = append(l.ips, a.String())
	}
	if ia := in.InternetAccessible; ia != nil {
		if !internetChargeTypes[ia.InternetChargeType] {
			return nil, api.InvalidValue("InternetAccessible.InternetChargeType", "%q is not a network charge type", ia.InternetChargeType)
		}
		bw := int64(0)
		if ia.InternetMaxBandwidthOut != nil {
			bw = *ia.InternetMaxBandwidthOut
			if bw < 0 || bw > 65535 {
				return nil, api.Errorf("InvalidParameterValue.Range", "parameter `InternetAccessible.InternetMaxBandwidthOut` must be between 0 and 65535, got %d", bw)
			}
		}
		l.public = bw > 0
		if ia.PublicIpAssigned != nil {
			l.public = *ia.PublicIpAssigned
		}
	}
	for i, sg := range in.SecurityGroupIds {
		if !api.WellFormedID(sg, "sg-") {
			return nil, api.Errorf("InvalidSgId.Malformed", "parameter `SecurityGroupIds.%d`: %q is not a security group ID", i, sg)
		}
		l.sgs = append(l.sgs, sg)
	}
	keys := map[string]bool{}
	for i, spec := range in.TagSpecification {
		field := "TagSpecification." + strconv.Itoa(i)
		if spec.ResourceType == "" {
			return nil, api.MissingParameter(field + ".ResourceType")
		}
		if err := api.OneOf(field+".ResourceType", spec.ResourceType, tagResourceTypes...); err != nil {
			return nil, err
		}
		if err := api.CheckTags(field+".Tags", spec.Tags, api.TagCodes{Duplicate: "InvalidParameterValue.DuplicateTags"}); err != nil {
			return nil, err
		}
		if spec.ResourceType != "instance" {
			continue // tags for the host or the disks are accepted and not stored
		}
		for j, t := range spec.Tags {
			if keys[t.Key] {
				return nil, api.Errorf("InvalidParameterValue.DuplicateTags", "parameter `%s.Tags.%d.Key`: tag key %q is given twice", field, j, t.Key)
			}
			keys[t.Key] = true
			l.tags = append(l.tags, t)
		}
	}
	if len(l.tags) > api.MaxTags {
		return nil, api.Errorf("InvalidParameterValue.LimitExceeded", "an instance takes at most %d tags, got %d", api.MaxTags, len(l.tags))
	}
	return l, nil
}

// checkHostName applies the Linux rules (the image's OS is not modelled): 2-60 letters,
// digits, '-' and '.', no '.' or '-' first, last or twice in a row.
func checkHostName(h string) error {
	if h == "" {
		return nil
	}
	bad := func(why string) error {
		return api.Errorf("InvalidHostName.Malformed", "parameter `HostName` %q: %s", h, why)
	}
	if len(h) < 2 || len(h) > maxHostName {
		return bad(fmt.Sprintf("must be 2 to %d characters", maxHostName))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(h)-1 {
				return bad("must not start or end with '.' or '-'")
			}
			if p := h[i-1]; p == '-' || p == '.' {
				return bad("must not use '.' or '-' twice in a row")
			}
		default:
			return bad(fmt.Sprintf("character %q is not a letter, digit, '-' or '.'", c))
		}
	}
	return nil
}

// checkUserData: base64 (standard encoding), at most 16 KB as sent.
func checkUserData(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > maxUserData {
		return api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `UserData` is at most %d bytes (base64-encoded), got %d", maxUserData, len(u))
	}
	if _, err := base64.StdEncoding.DecodeString(u); err != nil {
		return api.Errorf("InvalidUserData.Malformed", "parameter `UserData` is not base64: %v", err)
	}
	return nil
}

// checkLogin: a Linux password of 8-30 characters from at least two classes; a password,
// key IDs (one) and KeepImageLogin exclude each other. Nothing here is stored or logged.
func checkLogin(ls *cvm.LoginSettings) error {
	if ls == nil {
		return nil
	}
	set := 0
	for _, b := range []bool{ls.Password != "", len(ls.KeyIds) > 0, ls.KeepImageLogin == "TRUE"} {
		if b {
			set++
		}
	}
	if set > 1 {
		return api.Errorf("InvalidParameterCombination", "parameters `LoginSettings.Password`, `LoginSettings.KeyIds` and `LoginSettings.KeepImageLogin` exclude each other")
	}
	if ls.KeepImageLogin != "" {
		if err := api.OneOf("LoginSettings.KeepImageLogin", ls.KeepImageLogin, "TRUE", "FALSE"); err != nil {
			return err
		}
	}
	if len(ls.KeyIds) > 1 {
		return api.Errorf("InvalidParameterValue.LimitExceeded", "parameter `LoginSettings.KeyIds` takes one key at launch, got %d", len(ls.KeyIds))
	}
	for i, k := range ls.KeyIds {
		if !api.WellFormedID(k, "skey-") {
			return api.Errorf("InvalidKeyPairId.Malformed", "parameter `LoginSettings.KeyIds.%d` is not a key ID (skey-xxxxxxxx)", i)
		}
	}
	if p := ls.Password; p != "" {
		classes := 0
		for _, in := range []func(rune) bool{
			func(r rune) bool { return r >= 'a' && r <= 'z' },
			func(r rune) bool { return r >= 'A' && r <= 'Z' },
			func(r rune) bool { return r >= '0' && r <= '9' },
			func(r rune) bool { return strings.ContainsRune("()`~!@#$%^&*-+=|{}[]:;',.?/", r) },
		} {
			if strings.IndexFunc(p, in) >= 0 {
				classes++
			}
		}
		valid := strings.IndexFunc(p, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("()`~!@#$%^&*-+=|{}[]:;',.?/", r))
		}) < 0
		if len(p) < 8 || len(p) > 30 || classes < 2 || !valid {
			return api.Errorf("InvalidPassword", "parameter `LoginSettings.Password` must be 8 to 30 characters from at least two of: lower case, upper case, digits, ()`~!@#$%%^&*-+=|{}[]:;',.?/")
		}
	}
	return nil
}

var renewFlags = map[string]bool{"": true, "NOTIFY_AND_AUTO_RENEW": true, "NOTIFY_AND_MANUAL_RENEW": true, "DISABLE_NOTIFY_AND_MANUAL_RENEW": true}

// checkPrepaid checks the term of a PREPAID launch; other charge types take none.
func checkPrepaid(charge string, p *cvm.InstanceChargePrepaid) error {
	if charge != "PREPAID" {
		if p != nil {
			return api.Errorf("InvalidParameterCombination", "parameter `InstanceChargePrepaid` is only for InstanceChargeType PREPAID, not %s", charge)
		}
		return nil
	}
	if p == nil || p.Period == nil {
		return api.MissingParameter("InstanceChargePrepaid.Period")
	}
	if n := *p.Period; !(n >= 1 && n <= 12 || n == 24 || n == 36 || n == 48 || n == 60) {
		return api.Errorf("InvalidPeriod", "parameter `InstanceChargePrepaid.Period`: %d is not a term in months (1-12, 24, 36, 48, 60)", n)
	}
	if !renewFlags[p.RenewFlag] {
		return api.InvalidValue("InstanceChargePrepaid.RenewFlag", "%q is not a renew flag", p.RenewFlag)
	}
	return nil
}

func validTypeShape(t string) bool {
	for i := 1; i < len(t)-1; i++ {
		if t[i] == '.' {
			return true
		}
	}
	return false
}

// checkNetwork checks the VPC and subnet of a launch against the store.
func (m *Module) checkNetwork(tx *store.Tx, l *launch) error {
	if _, ok := m.vpcs.Get(tx, l.vpcID); !ok {
		return api.Errorf("InvalidParameterValue.VpcIdNotExist", "parameter `VirtualPrivateCloud.VpcId`: VPC %s does not exist", l.vpcID)
	}
	sn, ok := m.subnets.Get(tx, l.subnetID)
	if !ok || sn.VpcId != l.vpcID {
		return api.Errorf("InvalidParameterValue.SubnetNotExist", "parameter `VirtualPrivateCloud.SubnetId`: subnet %s does not exist in VPC %s", l.subnetID, l.vpcID)
	}
	if sn.Zone != l.zone {
		return api.Errorf("InvalidParameterValue.VpcIdZoneIdNotMatch", "parameter `VirtualPrivateCloud.SubnetId`: subnet %s is in zone %s, not in Placement.Zone %s", l.subnetID, sn.Zone, l.zone)
	}
	return nil
}

func (m *Module) launchOne(tx *store.Tx, r *api.Request, l *launch, i int) (*Instance, error) {
	id := api.NewID("ins")
	for {
		if _, taken := instancesT.Get(tx, id); !taken {
			break
		}
		id = api.NewID("ins")
	}
	want := ""
	if len(l.ips) > 0 {
		want = l.ips[i]
	}
	ip, err := vpc.AllocateIP(tx, l.subnetID, want)
	if err != nil {
		if api.AsError(err).Code == vpc.CodeSubnetExhausted {
			return nil, api.Errorf("FailedOperation.NoAvailableIpAddressCountInSubnet", "subnet %s has no free private IP address for instance %d of %d", l.subnetID, i+1, l.count)
		}
		return nil, err
	}
	pub := ""
	if l.public {
		if pub, err = allocatePublicIP(tx, id); err != nil {
			return nil, err
		}
	}
	name := l.name
	switch {
	case name == "":
		name = "Unnamed"
	case l.count > 1:
		name += strconv.Itoa(i + 1)
	}
	state, next, at := cvm.StatePending, cvm.StateRunning, r.Now.Add(m.delays.InstanceBoot)
	if m.delays.InstanceBoot <= 0 {
		state, next = cvm.StateRunning, ""
	}
	in := &Instance{
		InstanceId: id, InstanceName: name, InstanceType: l.typ, ImageId: l.image, Zone: l.zone,
		VpcId: l.vpcID, SubnetId: l.subnetID, PrivateIP: ip, PublicIP: pub, Tags: slices.Clone(l.tags),
		ChargeType: l.charge, SystemDiskType: l.diskType, SystemDiskSize: l.diskSize,
		SecurityGroupIds: slices.Clone(l.sgs), Uuid: uuid.NewString(), CreatedTime: r.Now, LaunchIndex: i,
		State: state, NextState: next, NextAt: at, LatestOperation: "RunInstances", LatestOperationRequestId: r.RequestID,
	}
	if err := m.put(tx, in); err != nil {
		return nil, err
	}
	return in, nil
}

func allocatePublicIP(tx *store.Tx, owner string) (string, error) {
	for _, p := range publicPools {
		for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
			if last := a.As4()[3]; last == 0 || last == 255 {
				continue
			}
			ip := a.String()
			if _, taken := publicIPsT.Get(tx, ip); !taken {
				return ip, publicIPsT.Put(tx, ip, &publicIP{InstanceId: owner})
			}
		}
	}
	return "", api.Errorf("ResourcesSoldOut.EipInsufficient", "no public IP address is left in the region")
}
