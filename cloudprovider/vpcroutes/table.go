package vpcroutes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/stratus-cloud/stratus/cloudapi"
	"github.com/stratus-cloud/stratus/cloudapi/cvm"
	"github.com/stratus-cloud/stratus/cloudapi/vpc"
	"github.com/stratus-cloud/stratus/routes"
)

// Per-request limits of the VPC API this adapter stays within.
//
// Neither the API reference nor the SDK model comments (tencentcloud-sdk-go v1.0.162,
// vpc/v20170312/models.go) state how many routes one CreateRoutes or DeleteRoutes may
// carry, nor a length for RouteDescription. We take 100 routes per call, the protocol's
// usual cap on a list in one request (ids per call, Limit), and at most 60 bytes of
// description, the limit of every other VPC free-text field (fakecloud enforces the same,
// see fakecloud/LIMITS.md). The marker "stratus.io/cluster=<clusterId>" therefore fits
// cluster ids of up to 41 characters; a longer one is refused when the provider starts.
const (
	// MaxRoutesPerCreate is the most routes one CreateRoutes carries.
	MaxRoutesPerCreate = 100
	// MaxRoutesPerDelete is the most routes one DeleteRoutes carries.
	MaxRoutesPerDelete = 100
	// MaxDescriptionLen is the longest RouteDescription we send, in bytes.
	MaxDescriptionLen = 60
	// PageLimit is DescribeRouteTables' largest page (Limit, as a string).
	PageLimit = 100
	// TagCluster is the tag that marks the cluster's route table when routeTableId is
	// not configured.
	TagCluster = "stratus.io/cluster"
)

// ErrNoInstance is what Instances answers for a private IP no instance of the VPC has.
var ErrNoInstance = errors.New("no instance has this private IP")

// Instances tells the state of the instance that holds a private IP of the VPC. The
// provider binds it to its instance lookups (a VPC listing shared with the node
// controllers); ErrNoInstance must only come from a query made after the question.
// current asks for the state now (a listing no older than the lookups' state TTL);
// without it an older listing may answer.
type Instances interface {
	StateByPrivateIP(ctx context.Context, ip string, current bool) (string, error)
}

// Config names the table to manage.
type Config struct {
	VpcID     string
	ClusterID string
	// RouteTableID is the table; empty means the one table of VpcID tagged
	// stratus.io/cluster=<ClusterID>.
	RouteTableID string
	Instances    Instances
}

// Table is a routes.Table over one VPC route table. The table is resolved on first use
// (and again after a failed resolution), so that a transient failure at start does not
// leave the engine without a table.
type Table struct {
	vpc *vpc.Client
	cfg Config

	mu       sync.Mutex
	tableID  string
	resolved bool
}

var _ routes.Table = (*Table)(nil)

// New returns a Table; Resolve (or the first call) finds the route table.
func New(client *vpc.Client, cfg Config) (*Table, error) {
	switch {
	case client == nil:
		return nil, errors.New("vpcroutes: no VPC client")
	case cfg.VpcID == "":
		return nil, errors.New("vpcroutes: vpc id is empty")
	case cfg.ClusterID == "":
		return nil, errors.New("vpcroutes: cluster id is empty")
	case cfg.Instances == nil:
		return nil, errors.New("vpcroutes: no instance lookups")
	case len(routes.Marker(cfg.ClusterID)) > MaxDescriptionLen:
		return nil, fmt.Errorf("vpcroutes: cluster id %q makes the route description %q longer than the %d bytes RouteDescription takes; use a cluster id of at most %d characters", cfg.ClusterID, routes.Marker(cfg.ClusterID), MaxDescriptionLen, MaxDescriptionLen-len(routes.MarkerPrefix))
	}
	return &Table{vpc: client, cfg: cfg}, nil
}

// Limits are the adapter's per-call limits.
func (t *Table) Limits() routes.Limits {
	return routes.Limits{MaxCreate: MaxRoutesPerCreate, MaxDelete: MaxRoutesPerDelete}
}

// Resolve returns the route table id: the configured one after checking that it exists
// in the VPC, else the one table of the VPC tagged for the cluster. None or several is an
// error that names them. A success is kept; a failure is tried again on the next call.
func (t *Table) Resolve(ctx context.Context) (string, error) {
	t.mu.Lock()
	if t.resolved {
		defer t.mu.Unlock()
		return t.tableID, nil
	}
	t.mu.Unlock()
	id, err := t.resolve(ctx)
	if err != nil {
		return "", fmt.Errorf("route table: %w", err)
	}
	t.mu.Lock()
	t.tableID, t.resolved = id, true
	t.mu.Unlock()
	return id, nil
}

func (t *Table) resolve(ctx context.Context) (string, error) {
	if id := t.cfg.RouteTableID; id != "" {
		out, err := t.vpc.DescribeRouteTables(ctx, &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{id}})
		if err != nil {
			return "", fmt.Errorf("%s (routeTableId): %w", id, err)
		}
		if len(out.RouteTableSet) == 0 {
			return "", fmt.Errorf("%s (routeTableId) does not exist", id)
		}
		if vp := out.RouteTableSet[0].VpcId; vp != t.cfg.VpcID {
			return "", fmt.Errorf("%s (routeTableId) belongs to VPC %s, not to %s (vpcId)", id, vp, t.cfg.VpcID)
		}
		return id, nil
	}
	var ids []string
	filters := []cloudapi.Filter{
		{Name: "vpc-id", Values: []string{t.cfg.VpcID}},
		{Name: "tag:" + TagCluster, Values: []string{t.cfg.ClusterID}},
	}
	for offset := 0; ; {
		out, err := t.vpc.DescribeRouteTables(ctx, &vpc.DescribeRouteTablesRequest{Filters: filters, Offset: vpc.Count(int64(offset)), Limit: vpc.Count(PageLimit)})
		if err != nil {
			return "", fmt.Errorf("find the table of VPC %s tagged %s=%s: %w", t.cfg.VpcID, TagCluster, t.cfg.ClusterID, err)
		}
		for _, rt := range out.RouteTableSet {
			ids = append(ids, rt.RouteTableId)
		}
		offset += len(out.RouteTableSet)
		if len(out.RouteTableSet) == 0 || int64(offset) >= out.TotalCount {
			break
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no route table of VPC %s is tagged %s=%s: tag the table for pod routes, or set routeTableId in the cloud-config", t.cfg.VpcID, TagCluster, t.cfg.ClusterID)
	case 1:
		return ids[0], nil
	}
	slices.Sort(ids)
	return "", fmt.Errorf("%d route tables of VPC %s are tagged %s=%s (%s): keep the tag on one, or set routeTableId in the cloud-config", len(ids), t.cfg.VpcID, TagCluster, t.cfg.ClusterID, strings.Join(ids, ", "))
}

// List returns every IPv4 route of the table. Next hops of types other than NORMAL_CVM
// have no Gateway address, so the engine never takes them for its own.
func (t *Table) List(ctx context.Context) ([]routes.Route, error) {
	id, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	out, err := t.vpc.DescribeRouteTables(ctx, &vpc.DescribeRouteTablesRequest{RouteTableIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describe route table %s: %w", id, err)
	}
	if len(out.RouteTableSet) == 0 {
		return nil, fmt.Errorf("route table %s is gone", id)
	}
	set := out.RouteTableSet[0].RouteSet
	rs := make([]routes.Route, 0, len(set))
	for i := range set {
		w := &set[i]
		dest, err := netip.ParsePrefix(w.DestinationCidrBlock)
		if err != nil || !dest.Addr().Is4() {
			continue // IPv6 and anything unparsable is never ours
		}
		r := routes.Route{ID: routeID(w), Destination: dest, Description: w.RouteDescription}
		if w.GatewayType == vpc.GatewayTypeNormalCVM {
			if gw, err := netip.ParseAddr(w.GatewayId); err == nil {
				r.Gateway = gw
			}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// routeID prefers the string RouteItemId; RouteId is the older numeric form.
func routeID(w *vpc.Route) string {
	if w.RouteItemId != "" {
		return w.RouteItemId
	}
	if w.RouteId != nil {
		return strconv.FormatUint(*w.RouteId, 10)
	}
	return ""
}

// Create adds routes with next hop type NORMAL_CVM in one CreateRoutes call.
func (t *Table) Create(ctx context.Context, rs []routes.Route) error {
	if len(rs) == 0 {
		return nil
	}
	if len(rs) > MaxRoutesPerCreate {
		return fmt.Errorf("create %d routes: at most %d per CreateRoutes", len(rs), MaxRoutesPerCreate)
	}
	id, err := t.Resolve(ctx)
	if err != nil {
		return err
	}
	req := &vpc.CreateRoutesRequest{RouteTableId: id, Routes: make([]vpc.Route, 0, len(rs))}
	for _, r := range rs {
		if len(r.Description) > MaxDescriptionLen {
			return fmt.Errorf("route %s: description is longer than %d characters", r, MaxDescriptionLen)
		}
		req.Routes = append(req.Routes, vpc.Route{
			DestinationCidrBlock: r.Destination.String(),
			GatewayType:          vpc.GatewayTypeNormalCVM,
			GatewayId:            r.Gateway.String(),
			RouteDescription:     r.Description,
		})
	}
	if _, err := t.vpc.CreateRoutes(ctx, req); err != nil {
		return classify(err)
	}
	return nil
}

// Delete removes routes by id in one DeleteRoutes call.
func (t *Table) Delete(ctx context.Context, rs []routes.Route) error {
	if len(rs) == 0 {
		return nil
	}
	if len(rs) > MaxRoutesPerDelete {
		return fmt.Errorf("delete %d routes: at most %d per DeleteRoutes", len(rs), MaxRoutesPerDelete)
	}
	id, err := t.Resolve(ctx)
	if err != nil {
		return err
	}
	req := &vpc.DeleteRoutesRequest{RouteTableId: id, Routes: make([]vpc.Route, 0, len(rs))}
	for _, r := range rs {
		sel := vpc.Route{}
		if n, err := strconv.ParseUint(r.ID, 10, 64); err == nil {
			sel.RouteId = &n
		} else if r.ID != "" {
			sel.RouteItemId = r.ID
		} else {
			return fmt.Errorf("route %s: no route id to delete it by", r)
		}
		req.Routes = append(req.Routes, sel)
	}
	if _, err := t.vpc.DeleteRoutes(ctx, req); err != nil {
		return classify(err)
	}
	return nil
}

// LiveGateways reports which addresses are private IPs of instances that run (or are on
// their way to running, so that a reboot does not drop a node's route).
func (t *Table) LiveGateways(ctx context.Context, gws []netip.Addr, current bool) (map[netip.Addr]bool, error) {
	out := make(map[netip.Addr]bool, len(gws))
	for _, gw := range gws {
		state, err := t.cfg.Instances.StateByPrivateIP(ctx, gw.String(), current)
		switch {
		case errors.Is(err, ErrNoInstance):
			out[gw] = false
		case err != nil:
			return nil, fmt.Errorf("gateway %s: %w", gw, err)
		default:
			out[gw] = liveStates[state]
		}
	}
	return out, nil
}

var liveStates = map[string]bool{
	cvm.StatePending: true, cvm.StateRunning: true, cvm.StateStarting: true, cvm.StateRebooting: true,
}

// classify turns the cloud's refusal of a call for what it carried into a
// routes.Refusal. Throttling, 5xx, transport failures and failures about the whole
// request (credentials, the table) stay plain errors: splitting would not help.
func classify(err error) error {
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case cloudapi.IsThrottled(err), cloudapi.HasCode(err, cloudapi.CodeInternalError), cloudapi.IsAuthFailure(err),
		strings.HasPrefix(ae.Code, "InvalidRouteTableId"):
		return err
	case cloudapi.IsLimitExceeded(err):
		return &routes.Refusal{Code: ae.Code, Message: ae.Message, Quota: true, Err: err}
	case strings.HasPrefix(ae.Code, "InvalidRouteId") && cloudapi.IsNotFound(err):
		return &routes.Refusal{Code: ae.Code, Message: ae.Message, NotFound: true, Err: err}
	case cloudapi.IsInvalidInput(err), cloudapi.HasCode(err, cloudapi.CodeUnsupportedOperation),
		cloudapi.HasCode(err, cloudapi.CodeFailedOperation), cloudapi.HasCode(err, cloudapi.CodeResourceInUse):
		return &routes.Refusal{Code: ae.Code, Message: ae.Message, Err: err}
	}
	return err
}
