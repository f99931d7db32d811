package config

import (
	"context"
	"fmt"
)

// Env is what a provider is opened with besides its decoded config.
type Env struct {
	// Name is the block's name (compute "qemu" "lab" is "lab").
	Name string
	// StateDir is drover's state directory; a provider that keeps files keeps them below it.
	StateDir string
	// FleetDir is the fleet file's directory: relative paths in a config are relative to it.
	FleetDir string
	// Lookup reads the environment, as NewConfig did.
	Lookup LookupEnv
}

// Factory makes the providers of one type of one kind; P is the kind's interface (compute.Provider,
// dns.Provider, ...). Each provider package exports a function returning its kind's factory, and
// plugins/all lists them; nothing registers itself.
type Factory[P any] struct {
	// Type is the first label of the provider's block, such as "qemu".
	Type string
	// Summary says in a few words what the type is, for validate's and --help's lists.
	Summary string
	// NewConfig returns a pointer to the provider's Config with its defaults and environment
	// (namespaced variables such as VULTR_API_KEY, or VULTR_API_KEY_FILE) applied; the fleet decoder
	// decodes the block on top of it.
	NewConfig func(env LookupEnv) (any, error)
	// Open makes a provider from the decoded config (the pointer NewConfig returned). It may ask the
	// platform what it needs to work (the zone's ID, say), so commands open a block only when they
	// use it. nil means the type's config is known but the provider cannot do its job yet: drover
	// validate refuses its blocks instead of accepting them.
	Open func(ctx context.Context, cfg any, env Env) (P, error)
	// Missing says, for a type without Open, what it lacks before validate accepts its blocks;
	// validate's refusal quotes it.
	Missing string
}

// Available reports whether the type can be opened.
func (f Factory[P]) Available() bool { return f.Open != nil }

// As returns cfg as the *C a factory's Open expects, or an error naming both types: a registry that
// hands one provider another's config is a bug, caught on the first open.
func As[C any](typ string, cfg any) (*C, error) {
	c, ok := cfg.(*C)
	if !ok || c == nil {
		var want *C
		return nil, &TypeError{Type: typ, Got: cfg, Want: want}
	}
	return c, nil
}

// TypeError is a config of the wrong Go type handed to a factory's Open.
type TypeError struct {
	Type      string
	Got, Want any
}

func (e *TypeError) Error() string {
	return "config: the " + e.Type + " provider was given a config of type " + typeName(e.Got) + ", it takes " + typeName(e.Want)
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
