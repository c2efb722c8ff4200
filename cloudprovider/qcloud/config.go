package qcloud

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/stratus-cloud/stratus/cloudapi"
)

// Config is the --cloud-config file (YAML). Unknown keys are an error, so that a typo is
// reported instead of silently falling back to a default.
//
//	region: ap-guangzhou
//	vpcId: vpc-stratus1
//	clusterId: cls-e2e
//	endpoint: http://127.0.0.1:8090     # empty: the real cloud
//	credentialsFile: /etc/stratus/credentials.yaml   # else STRATUS_SECRET_ID / STRATUS_SECRET_KEY
//	routeTableId: rtb-stratus1
//	loadBalancer: {defaultMode: nodeport, internalSubnetId: subnet-gz1, cacheMaxAge: 10m}
//	instances: {batching: true, cacheTTL: 10s, metadataMaxAge: 2m, batchWindow: 5ms}
//	routes: {batching: true, batchWindow: 50ms}
//	api: {rateLimit: 20}
type Config struct {
	Region          string             `json:"region"`
	VpcID           string             `json:"vpcId"`
	ClusterID       string             `json:"clusterId"`
	Endpoint        string             `json:"endpoint,omitempty"`
	CredentialsFile string             `json:"credentialsFile,omitempty"`
	RouteTableID    string             `json:"routeTableId,omitempty"`
	LoadBalancer    LoadBalancerConfig `json:"loadBalancer,omitempty"`
	Instances       InstancesConfig    `json:"instances,omitempty"`
	Routes          RoutesConfig       `json:"routes,omitempty"`
	API             APIConfig          `json:"api,omitempty"`

	// credentials are resolved by LoadConfig from the file or the environment. They are
	// unexported and have no JSON name so that no dump of a Config can contain them.
	credentials cloudapi.Credentials
}

// LoadBalancerConfig holds the cluster-wide defaults a Service's annotations override.
type LoadBalancerConfig struct {
	// DefaultMode is "nodeport" (L4 to every node's NodePort; the default) or "vip"
	// (L3: the VIP is routed to the nodes, which DNAT it).
	DefaultMode string `json:"defaultMode,omitempty"`
	// InternalSubnetID is the subnet of internal (INTERNAL) load balancers.
	InternalSubnetID string `json:"internalSubnetId,omitempty"`
	// InternetChargeType and InternetMaxBandwidthOut configure public load balancers.
	InternetChargeType      string `json:"internetChargeType,omitempty"`
	InternetMaxBandwidthOut *int64 `json:"internetMaxBandwidthOut,omitempty"`
	// CacheMaxAge is how long the cache of this cluster's load balancers is trusted
	// before it is read again from the cloud (default 10m), which also repairs changes
	// made to them by hand.
	CacheMaxAge *metav1.Duration `json:"cacheMaxAge,omitempty"`
}

// InstancesConfig tunes instance lookups.
type InstancesConfig struct {
	// Batching turns the VPC listing cache and the coalescing of lookups on (default) or
	// off (one DescribeInstances per lookup; for comparison).
	Batching *bool `json:"batching,omitempty"`
	// CacheTTL is how old the VPC listing may get (default 10s).
	CacheTTL *metav1.Duration `json:"cacheTTL,omitempty"`
	// BatchWindow is how long lookups are collected before one call is sent (default 5ms).
	BatchWindow *metav1.Duration `json:"batchWindow,omitempty"`
	// MetadataMaxAge is how old a listing may be for node metadata (zone, type,
	// addresses), as opposed to state (default 2m; at least cacheTTL).
	MetadataMaxAge *metav1.Duration `json:"metadataMaxAge,omitempty"`
}

// RoutesConfig tunes the pod routes (the route controller, --configure-cloud-routes).
type RoutesConfig struct {
	// Batching coalesces concurrent route creations and deletions into CreateRoutes /
	// DeleteRoutes calls of many routes (default) or sends one call per route (off; for
	// comparison).
	Batching *bool `json:"batching,omitempty"`
	// BatchWindow is how long routes are collected before one call is sent (default 50ms).
	BatchWindow *metav1.Duration `json:"batchWindow,omitempty"`
}

// APIConfig tunes the cloud API client.
type APIConfig struct {
	// RateLimit is the client-side budget per action, requests per second (default 20;
	// negative: unlimited).
	RateLimit *float64 `json:"rateLimit,omitempty"`
}

// Load balancer modes.
const (
	ModeNodePort = "nodeport"
	ModeVIP      = "vip"
)

// Defaults of the optional keys.
const (
	DefaultCacheTTL    = 10 * time.Second
	DefaultBatchWindow = 5 * time.Millisecond
	// DefaultMetadataMaxAge is well under the cloud-node controller's 5 minute status
	// update period, so an address change shows within two of them.
	DefaultMetadataMaxAge = 2 * time.Minute
)

var (
	regionRE = regexp.MustCompile(`^[a-z]+(-[a-z0-9]+)+$`)
	// Cloud resource ids: "<prefix>-<lowercase alphanumerics>".
	idRE = regexp.MustCompile(`^[a-z]+-[a-z0-9]+$`)
	// clusterId ends up in a tag value (stratus.io/cluster=<clusterId>).
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

// LoadConfig reads, defaults and validates a cloud-config, and resolves the credentials
// (credentialsFile, else the STRATUS_SECRET_ID / STRATUS_SECRET_KEY environment). Every
// error names the offending key.
func LoadConfig(r io.Reader) (*Config, error) {
	if r == nil {
		return nil, fmt.Errorf("cloud-config: no file given (--cloud-config is required for provider %s)", ProviderName)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cloud-config: read: %w", err)
	}
	cfg, err := decodeStrict(b)
	if err != nil {
		return nil, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("cloud-config: %w", errs.ToAggregate())
	}
	if err := cfg.resolveCredentials(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes YAML with exact, case-sensitive key names ("vpcID" is not
// "vpcId"), and reports every unknown or duplicate key by its full path.
func decodeStrict(b []byte) (*Config, error) {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, fmt.Errorf("cloud-config: not YAML: %w", err)
	}
	cfg := &Config{}
	strict, err := kjson.UnmarshalStrict(j, cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud-config: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("cloud-config: %w", errors.Join(strict...))
	}
	return cfg, nil
}

// Validate reports every invalid key at once.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.Region == "" {
		errs = append(errs, field.Required(field.NewPath("region"), "the region of the cluster, for example ap-guangzhou"))
	} else if !regionRE.MatchString(c.Region) {
		errs = append(errs, field.Invalid(field.NewPath("region"), c.Region, "not a region name such as ap-guangzhou"))
	}
	errs = append(errs, validateID(field.NewPath("vpcId"), c.VpcID, "vpc", true)...)
	if c.ClusterID == "" {
		errs = append(errs, field.Required(field.NewPath("clusterId"), "cloud resources are tagged stratus.io/cluster=<clusterId>"))
	} else if !clusterRE.MatchString(c.ClusterID) {
		errs = append(errs, field.Invalid(field.NewPath("clusterId"), c.ClusterID, "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, field.Invalid(field.NewPath("endpoint"), c.Endpoint, "not an http(s) URL"))
		}
	}
	errs = append(errs, validateID(field.NewPath("routeTableId"), c.RouteTableID, "rtb", false)...)

	lb := field.NewPath("loadBalancer")
	switch c.LoadBalancer.DefaultMode {
	case "", ModeNodePort, ModeVIP:
	default:
		errs = append(errs, field.NotSupported(lb.Child("defaultMode"), c.LoadBalancer.DefaultMode, []string{ModeNodePort, ModeVIP}))
	}
	errs = append(errs, validateID(lb.Child("internalSubnetId"), c.LoadBalancer.InternalSubnetID, "subnet", false)...)
	if v := c.LoadBalancer.InternetMaxBandwidthOut; v != nil && *v < 0 {
		errs = append(errs, field.Invalid(lb.Child("internetMaxBandwidthOut"), *v, "must not be negative"))
	}

	if d := c.LoadBalancer.CacheMaxAge; d != nil && d.Duration < time.Minute {
		errs = append(errs, field.Invalid(lb.Child("cacheMaxAge"), d.Duration.String(), "must be at least 1m"))
	}

	inst := field.NewPath("instances")
	if d := c.Instances.CacheTTL; d != nil && d.Duration <= 0 {
		errs = append(errs, field.Invalid(inst.Child("cacheTTL"), d.Duration.String(), "must be positive"))
	}
	if d := c.Instances.MetadataMaxAge; d != nil && d.Duration < c.CacheTTL() {
		errs = append(errs, field.Invalid(inst.Child("metadataMaxAge"), d.Duration.String(), "must be at least cacheTTL ("+c.CacheTTL().String()+")"))
	}
	if d := c.Instances.BatchWindow; d != nil && (d.Duration <= 0 || d.Duration > time.Second) {
		errs = append(errs, field.Invalid(inst.Child("batchWindow"), d.Duration.String(), "must be positive and at most 1s"))
	}
	if d := c.Routes.BatchWindow; d != nil && (d.Duration <= 0 || d.Duration > time.Second) {
		errs = append(errs, field.Invalid(field.NewPath("routes", "batchWindow"), d.Duration.String(), "must be positive and at most 1s"))
	}
	if v := c.API.RateLimit; v != nil && *v == 0 {
		errs = append(errs, field.Invalid(field.NewPath("api", "rateLimit"), *v, "must not be 0 (negative means unlimited)"))
	}
	return errs
}

func validateID(p *field.Path, v, prefix string, required bool) field.ErrorList {
	switch {
	case v == "" && required:
		return field.ErrorList{field.Required(p, "a "+prefix+"-... id")}
	case v == "":
		return nil
	case !strings.HasPrefix(v, prefix+"-") || !idRE.MatchString(v):
		return field.ErrorList{field.Invalid(p, v, "not a "+prefix+"-... id")}
	}
	return nil
}

func (c *Config) resolveCredentials() error {
	if c.CredentialsFile != "" {
		creds, err := cloudapi.CredentialsFromFile(c.CredentialsFile)
		if err != nil {
			return fmt.Errorf("cloud-config: credentialsFile: %w", err)
		}
		c.credentials = creds
		return nil
	}
	creds, ok := cloudapi.CredentialsFromEnv()
	if !ok {
		return fmt.Errorf("cloud-config: credentialsFile: not set, and neither %s nor %s is in the environment", cloudapi.EnvSecretID, cloudapi.EnvSecretKey)
	}
	if err := creds.Validate(); err != nil {
		return fmt.Errorf("cloud-config: credentials from the environment (%s, %s): %w", cloudapi.EnvSecretID, cloudapi.EnvSecretKey, err)
	}
	c.credentials = creds
	return nil
}

// Batching reports instances.batching (default true).
func (c *Config) Batching() bool { return c.Instances.Batching == nil || *c.Instances.Batching }

// CacheTTL reports instances.cacheTTL with its default.
func (c *Config) CacheTTL() time.Duration {
	if c.Instances.CacheTTL == nil {
		return DefaultCacheTTL
	}
	return c.Instances.CacheTTL.Duration
}

// BatchWindow reports instances.batchWindow with its default.
func (c *Config) BatchWindow() time.Duration {
	if c.Instances.BatchWindow == nil {
		return DefaultBatchWindow
	}
	return c.Instances.BatchWindow.Duration
}

// MetadataMaxAge reports instances.metadataMaxAge with its default (never below cacheTTL).
func (c *Config) MetadataMaxAge() time.Duration {
	if c.Instances.MetadataMaxAge == nil {
		return max(DefaultMetadataMaxAge, c.CacheTTL())
	}
	return c.Instances.MetadataMaxAge.Duration
}

// DefaultLBCacheMaxAge is loadBalancer.cacheMaxAge's default.
const DefaultLBCacheMaxAge = 10 * time.Minute

// LBCacheMaxAge reports loadBalancer.cacheMaxAge with its default.
func (c *Config) LBCacheMaxAge() time.Duration {
	if c.LoadBalancer.CacheMaxAge == nil {
		return DefaultLBCacheMaxAge
	}
	return c.LoadBalancer.CacheMaxAge.Duration
}

// RoutesBatching reports routes.batching (default true).
func (c *Config) RoutesBatching() bool { return c.Routes.Batching == nil || *c.Routes.Batching }

// RoutesBatchWindow reports routes.batchWindow (0: the engine's default).
func (c *Config) RoutesBatchWindow() time.Duration {
	if c.Routes.BatchWindow == nil {
		return 0
	}
	return c.Routes.BatchWindow.Duration
}

// RateLimit reports api.rateLimit (0 lets the client take its default).
func (c *Config) RateLimit() float64 {
	if c.API.RateLimit == nil {
		return 0
	}
	return *c.API.RateLimit
}

// Credentials returns the resolved key pair (its String method redacts the key).
func (c *Config) Credentials() cloudapi.Credentials { return c.credentials }

// WithCredentials returns a copy of c that signs with creds; for callers that build a
// Config in code (benchmarks, tests) rather than from a file.
func (c Config) WithCredentials(creds cloudapi.Credentials) *Config {
	c.credentials = creds
	return &c
}

// String describes c without the credentials' key, so that printing a Config with any
// verb (%v, %+v) cannot leak it.
func (c Config) String() string {
	return fmt.Sprintf("Config{region: %s, vpcId: %s, clusterId: %s, endpoint: %s, credentialsFile: %s, routeTableId: %s, credentials: %s}",
		c.Region, c.VpcID, c.ClusterID, c.Endpoint, c.CredentialsFile, c.RouteTableID, c.credentials.String())
}

// GoString keeps %#v from printing the key as well.
func (c Config) GoString() string { return c.String() }
