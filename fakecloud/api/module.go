package api

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/stratus-cloud/stratus/fakecloud/store"
)

// Module is what a service package gives the server: its actions and its part of the seed.
// A module that owns goroutines, listeners or devices (the data plane) also implements
// io.Closer.
type Module interface {
	API() Service
	// Seed imports the module's resources from its own sections of s (Section) into an
	// empty store.
	Seed(tx *store.Tx, s *Seed) error
}

// NewModule builds a module on w. It reports invalid options as an error; it never
// panics.
type NewModule func(w *World) (Module, error)

// Starter is implemented by modules that bring the machine in line with the stored state
// (the data plane re-binding devices and listeners after a restart or a reset).
type Starter interface {
	Start() error
}

// Seed is the declarative starting world (YAML). The framework owns the region, zones,
// credentials and quotas; every other top-level key is a section owned by one service
// ("vpcs" by vpc, "instances" by cvm, ...), which decodes it strictly with Section. A
// section no service reads is an error, so a typo in a seed file never goes unnoticed.
type Seed struct {
	Region      string           `json:"region,omitempty"`
	Zones       []string         `json:"zones,omitempty"`
	Credentials []SeedCredential `json:"credentials,omitempty"`
	// Limits raises or lowers account quotas ("routes-per-table": 1000); per-request API
	// limits are not quotas and cannot be changed.
	Limits map[string]int `json:"limits,omitempty"`

	sections map[string]any // a Go value (Set) or the jsontext.Value read from a file
	read     map[string]bool
}

// SeedCredential is one key pair fakecloud accepts.
type SeedCredential struct {
	SecretID  string `json:"secretId"`
	SecretKey string `json:"secretKey"`
}

var frameworkKeys = []string{"region", "zones", "credentials", "limits"}

// Set stores section key (a service's part of the seed) as v. The owning service's type is
// the natural v ([]vpc.SeedVPC for "vpcs"), but anything that encodes to the same JSON works.
func (s *Seed) Set(key string, v any) {
	if s.sections == nil {
		s.sections = map[string]any{}
	}
	s.sections[key] = v
}

// Section decodes section key into out (a pointer) and marks it read. It reports whether
// the seed has the section; a section that does not fit out is an error naming it. Slices
// and maps in out share their elements with the seed.
func (s *Seed) Section(key string, out any) (bool, error) {
	if s.read == nil {
		s.read = map[string]bool{}
	}
	s.read[key] = true
	v, ok := s.sections[key]
	if !ok {
		return false, nil
	}
	dst := reflect.ValueOf(out)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return true, fmt.Errorf("seed section %s: decode target must be a non-nil pointer", key)
	}
	if src := reflect.ValueOf(v); src.Type() == dst.Elem().Type() {
		dst.Elem().Set(src)
		return true, nil
	}
	raw, isRaw := v.(jsontext.Value)
	if !isRaw {
		b, err := json.Marshal(v)
		if err != nil {
			return true, fmt.Errorf("seed section %s: %w", key, err)
		}
		raw = b
	}
	if err := DecodeBytes(raw, out); err != nil {
		return true, fmt.Errorf("seed section %s: %w", key, err)
	}
	// Keep the typed value, so a caller that changes what it read (a test editing one
	// instance of a file's seed) changes the seed.
	s.sections[key] = dst.Elem().Interface()
	return true, nil
}

// Durations decodes section key, an object of Go durations ("30s", "1m30s"), into the
// named fields; a name not in fields, or a value that is not a non-negative duration, is
// an error. It reports whether the seed has the section.
func (s *Seed) Durations(key string, fields map[string]*time.Duration) (bool, error) {
	var raw map[string]string
	ok, err := s.Section(key, &raw)
	if err != nil || !ok {
		return ok, err
	}
	for name, v := range raw {
		dst, known := fields[name]
		if !known {
			names := make([]string, 0, len(fields))
			for n := range fields {
				names = append(names, n)
			}
			sort.Strings(names)
			return true, fmt.Errorf("seed section %s: %q is not one of %v", key, name, names)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return true, fmt.Errorf("seed section %s: %s: %q is not a non-negative duration (30s, 1m30s)", key, name, v)
		}
		*dst = d
	}
	return true, nil
}

// Unread lists the sections no service has read, sorted.
func (s *Seed) Unread() []string {
	var out []string
	for k := range s.sections {
		if !s.read[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// UnmarshalJSON reads a seed file (sigs.k8s.io/yaml converts YAML to JSON first): the
// framework's keys strictly, every other key into a section for its service.
func (s *Seed) UnmarshalJSON(b []byte) error {
	var all map[string]jsontext.Value
	if err := DecodeBytes(b, &all); err != nil {
		return err
	}
	type framework Seed // without methods, so DecodeBytes does not recurse
	fw := map[string]jsontext.Value{}
	*s = Seed{}
	for k, v := range all {
		if slices.Contains(frameworkKeys, k) {
			fw[k] = v
			continue
		}
		s.Set(k, slices.Clone(v))
	}
	b, err := json.Marshal(fw)
	if err != nil {
		return err
	}
	var f framework
	if err := DecodeBytes(b, &f); err != nil {
		return err
	}
	f.sections, f.read = s.sections, nil
	*s = Seed(f)
	return nil
}

// MarshalJSON writes the seed back as one object (framework keys and sections).
func (s Seed) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for k, v := range s.sections {
		out[k] = v
	}
	type framework Seed
	b, err := json.Marshal(framework(s))
	if err != nil {
		return nil, err
	}
	var fw map[string]jsontext.Value
	if err := json.Unmarshal(b, &fw); err != nil {
		return nil, err
	}
	for k, v := range fw {
		out[k] = v
	}
	return json.Marshal(out, json.Deterministic(true))
}
