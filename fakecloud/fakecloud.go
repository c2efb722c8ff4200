package fakecloud

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// The documented default key pair, used when neither the environment nor the seed gives one.
const (
	DefaultSecretID  = "AKIDstratusfakecloud"
	DefaultSecretKey = "stratus-fakecloud-secret-key"
	DefaultRegion    = "ap-guangzhou"
)

// Config configures a Cloud.
type Config struct {
	// DataDir holds the state database (and, with the data plane, disk images). Empty
	// keeps the state in memory only, which unit tests use.
	DataDir string
	// Seed is the starting world, imported when the store is empty. Nil means region
	// ap-guangzhou with zones -1, -2, -3 and nothing else.
	Seed *api.Seed
	// Credentials maps SecretId to SecretKey; merged over the seed's.
	Credentials map[string]string
	// RateLimit is the default per-action limit (req/s; 0 = 20, negative = unlimited);
	// RateLimits overrides it per action.
	RateLimit  float64
	RateLimits map[string]float64
	// Delays of the built-in services' state machines; overrides the seed's delay
	// sections when non-nil. Modules built by the caller take theirs as options.
	Delays *Delays
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// Modules replaces the built-in services (cvm, vpc, clb, cbs); nil keeps them.
	Modules []api.NewModule
	// DataPlane, when set (and Modules is nil), turns on the built-in services' data planes.
	DataPlane *DataPlane
}

// Cloud is a running simulator: an http.Handler plus the state behind it.
type Cloud struct {
	world    *api.World
	seed     *api.Seed
	modules  []api.Module
	services map[string]api.Service

	mu    sync.RWMutex
	creds map[string]string

	limits *rateLimits
	faults faults
	calls  callCounts
	admin  *admin
}

// LoadSeed reads a YAML seed file.
func LoadSeed(path string) (*api.Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	var s api.Seed
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("parse seed %s: %w", path, err)
	}
	return &s, nil
}

// DefaultSeed is the world without a seed file: one region, three zones, nothing else.
func DefaultSeed() *api.Seed {
	return &api.Seed{Region: DefaultRegion, Zones: []string{DefaultRegion + "-1", DefaultRegion + "-2", DefaultRegion + "-3"}}
}

// New builds a Cloud, opening (or creating) its state and importing the seed into an
// empty store.
func New(cfg Config) (*Cloud, error) {
	seed := cfg.Seed
	if seed == nil {
		seed = DefaultSeed()
	}
	if seed.Region == "" {
		seed.Region = DefaultRegion
	}
	if len(seed.Zones) == 0 {
		return nil, errors.New("seed: at least one zone is required")
	}
	w := &api.World{
		Store:   store.New(),
		Region:  seed.Region,
		DataDir: cfg.DataDir,
		Clock:   cfg.Clock,
		Limits:  seed.Limits,
	}
	for i, z := range seed.Zones {
		w.Zones = append(w.Zones, api.Zone{Name: z, ID: fmt.Sprint(100001 + i), State: "AVAILABLE"})
	}
	c := &Cloud{
		world:    w,
		seed:     seed,
		services: map[string]api.Service{},
		creds:    map[string]string{},
		limits:   newRateLimits(cfg.RateLimit, cfg.RateLimits),
	}
	for _, sc := range seed.Credentials {
		c.creds[sc.SecretID] = sc.SecretKey
	}
	for id, key := range cfg.Credentials {
		c.creds[id] = key
	}
	if len(c.creds) == 0 {
		c.creds[DefaultSecretID] = DefaultSecretKey
	}
	mods := cfg.Modules
	if mods == nil {
		var err error
		if mods, err = builtinModules(cfg, seed); err != nil {
			return nil, err
		}
	}
	for _, newModule := range mods {
		m, err := newModule(w)
		if err != nil {
			return nil, fmt.Errorf("build service module: %w", err)
		}
		svc := m.API()
		if _, dup := c.services[svc.Name]; dup {
			return nil, fmt.Errorf("service %s registered twice", svc.Name)
		}
		c.services[svc.Name] = svc
		c.modules = append(c.modules, m)
	}
	if cfg.DataDir != "" {
		if err := w.Store.Open(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if err := c.importSeedIfEmpty(); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := c.startModules(); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.admin = newAdmin(c)
	return c, nil
}

// startModules lets data-plane modules catch up with the stored state.
func (c *Cloud) startModules() error {
	for _, m := range c.modules {
		if s, ok := m.(api.Starter); ok {
			if err := s.Start(); err != nil {
				return fmt.Errorf("start %s: %w", m.API().Name, err)
			}
		}
	}
	return nil
}

// importSeedIfEmpty seeds a fresh store; a restarted fakecloud keeps its own state.
func (c *Cloud) importSeedIfEmpty() error {
	empty := true
	for _, rows := range c.world.Store.Dump() {
		if len(rows) > 0 {
			empty = false
			break
		}
	}
	if !empty {
		klog.InfoS("Keeping existing state", "dataDir", c.world.DataDir)
		return nil
	}
	return c.world.Store.Update(func(tx *store.Tx) error {
		for _, m := range c.modules {
			if err := m.Seed(tx, c.seed); err != nil {
				return fmt.Errorf("seed %s: %w", m.API().Name, err)
			}
		}
		// Every section belongs to a service: one that none read is a typo or a section
		// for a service this cloud does not run.
		if unread := c.seed.Unread(); len(unread) > 0 {
			return fmt.Errorf("seed: no service reads the sections %v", unread)
		}
		return nil
	})
}

// Reset forgets every resource, fault and call count, and imports the seed again.
func (c *Cloud) Reset() error {
	if err := c.world.Store.Reset(); err != nil {
		return err
	}
	c.faults.clear()
	c.calls.reset()
	if err := c.importSeedIfEmpty(); err != nil {
		return err
	}
	return c.startModules()
}

// World exposes the shared state to in-process tests and the data plane.
func (c *Cloud) World() *api.World { return c.world }

// Region is the region this cloud serves.
func (c *Cloud) Region() string { return c.world.Region }

// Calls returns the per-action call counts since start or the last reset.
func (c *Cloud) Calls() map[string]int { return c.calls.snapshot() }

// ResetCalls zeroes the call counts.
func (c *Cloud) ResetCalls() { c.calls.reset() }

// AddFault installs a fault rule.
func (c *Cloud) AddFault(r FaultRule) { c.faults.add(r) }

// ClearFaults removes every fault rule.
func (c *Cloud) ClearFaults() { c.faults.clear() }

// SetRateLimit changes the per-action limit ("" = default for all actions).
func (c *Cloud) SetRateLimit(action string, perSecond float64) { c.limits.set(action, perSecond) }

// Credentials returns one key pair this cloud accepts, for building clients in tests.
func (c *Cloud) Credentials() (id, key string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, key := range c.creds {
		return id, key
	}
	return "", ""
}

// Close stops the modules' data planes and closes the store.
func (c *Cloud) Close() error {
	var errs []error
	for _, m := range c.modules {
		if cl, ok := m.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	errs = append(errs, c.world.Store.Close())
	return errors.Join(errs...)
}
