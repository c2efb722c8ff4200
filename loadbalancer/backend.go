package loadbalancer

import (
	"context"
	"errors"
	"net/netip"
)

// Backend is a cloud's load balancer API as the engine needs it. Every method that
// changes something gets the load balancer as the engine last saw it, so an
// implementation can compute set semantics (bound filters) without reading first.
//
// An implementation keeps within its cloud's per-request limits (it splits long target
// lists into several calls), waits for whatever the cloud needs between two writes to
// the same load balancer, and returns errors that wrap the cloud's code and message.
// It wraps ErrNotFound when a load balancer or listener does not exist and ErrStale when
// the cloud's state contradicts the lb it was given (a target already bound, a task that
// failed): the engine then reads the load balancer again and plans anew.
type Backend interface {
	// List returns every load balancer this cluster owns (tagged TagCluster), with its
	// listeners, their targets, and its source filters.
	List(ctx context.Context) ([]*LoadBalancer, error)
	// Get returns load balancer id, whoever owns it; an error wrapping ErrNotFound when
	// there is none.
	Get(ctx context.Context, id string) (*LoadBalancer, error)
	// Create makes a load balancer and returns it once it accepts listeners. Sending the
	// same request (same Token) again returns the load balancer the first one made.
	Create(ctx context.Context, req CreateRequest) (*LoadBalancer, error)
	// Delete deletes a load balancer this cluster owns, with its listeners, and the
	// source filter Stratus made for it.
	Delete(ctx context.Context, lb *LoadBalancer) error

	// CreateListeners creates listeners (without targets) and returns them with their ids.
	CreateListeners(ctx context.Context, lb *LoadBalancer, specs []ListenerSpec) ([]Listener, error)
	// UpdateListener changes a listener's scheduler, session persistence and health check
	// to those of l.
	UpdateListener(ctx context.Context, lb *LoadBalancer, l Listener) error
	// DeleteListeners deletes listeners with their targets.
	DeleteListeners(ctx context.Context, lb *LoadBalancer, ids []string) error

	// RegisterTargets binds targets (each to its listener); DeregisterTargets unbinds
	// them; SetWeights changes the weights of bound ones.
	RegisterTargets(ctx context.Context, lb *LoadBalancer, ts []ListenerTarget) error
	DeregisterTargets(ctx context.Context, lb *LoadBalancer, ts []ListenerTarget) error
	SetWeights(ctx context.Context, lb *LoadBalancer, ts []ListenerTarget) error

	// SetSourceRanges makes the load balancer accept connections only from ranges (every
	// source again when ranges is empty) through a filter owned by owner, and returns the
	// load balancer's filters afterwards.
	SetSourceRanges(ctx context.Context, lb *LoadBalancer, owner Owner, ranges []netip.Prefix) ([]Filter, error)
}

// Errors a Backend wraps.
var (
	ErrNotFound = errors.New("not found")
	ErrStale    = errors.New("the cloud's state is not what the engine last saw")
)
