package routes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// Route is one entry of a cloud route table as the engine sees it.
type Route struct {
	// ID is the cloud's identity of the entry, as Table.Delete needs it. Create ignores it.
	ID string
	// Destination is the IPv4 block the route sends somewhere.
	Destination netip.Prefix
	// Gateway is the next hop when it is an address (the node's private IP); the zero Addr
	// for next hops of other kinds (a VPN gateway, a NAT), which the engine never owns.
	Gateway netip.Addr
	// Description is the free text of the entry; the engine marks its own routes there.
	Description string
}

func (r Route) String() string { return r.Destination.String() + " via " + r.Gateway.String() }

// Limits are the per-call limits of a Table.
type Limits struct {
	// MaxCreate and MaxDelete are the most routes one Create / Delete call may carry.
	MaxCreate, MaxDelete int
}

// Table is the cloud route table the engine manages. Implementations bind it to one
// table of one cloud; they must be safe for concurrent use.
type Table interface {
	// List returns every route of the table, whoever made it.
	List(ctx context.Context) ([]Route, error)
	// Create adds routes (Destination, Gateway, Description) in one call, all or none.
	Create(ctx context.Context, routes []Route) error
	// Delete removes routes, named by ID, in one call, all or none.
	Delete(ctx context.Context, routes []Route) error
	// LiveGateways reports, for each address, whether it can carry traffic as a next hop
	// (for a VPC: it is the private IP of a running instance). An address it cannot judge
	// right now is an error, never false: false makes the route controller delete routes.
	//
	// With current set the answer must reflect the gateway's state now (within the
	// table's notion of fresh): the engine reports routes via a false gateway as
	// blackholes, which deletes them. Without it an older answer will do: the engine only
	// uses it to skip creating a route that would be a blackhole, and a wrong "live"
	// costs one create that the next listing undoes.
	LiveGateways(ctx context.Context, gateways []netip.Addr, current bool) (map[netip.Addr]bool, error)
	// Limits returns the per-call limits.
	Limits() Limits
}

// Refusal is the error a Table returns when the cloud refused a call because of what it
// carried (a bad route, a full table), as opposed to a failure to get an answer
// (throttling after retries, a 5xx, a timeout). Only refusals make the engine split a
// batch: retrying the parts of a call that failed for a transient reason only adds load.
type Refusal struct {
	// Code and Message are the cloud's, for the user (they end up in the Node's event).
	Code, Message string
	// Quota says the call would have passed a count limit (a full route table): a call
	// with at least as many new routes fails too, so the engine does not send it.
	Quota bool
	// NotFound says a route to delete was not there (already gone).
	NotFound bool
	// Err is the underlying error, with the request id.
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("%s: %s", r.Code, r.Message)
}

func (r *Refusal) Unwrap() error { return r.Err }

// asRefusal returns the Refusal inside err, if any.
func asRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}
