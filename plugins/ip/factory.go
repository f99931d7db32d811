package ip

import (
	"context"
	"net/netip"
	"slices"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory makes failover IP providers of one type. An ip block names the compute block whose
// instances its address moves between; Computes says which compute types that may be, and Open is
// given that block's provider.
type Factory struct {
	Type    string
	Summary string
	// Computes are the compute types whose instances this type can move an address between.
	Computes []string
	// NewConfig returns a pointer to the Config with defaults and environment applied.
	NewConfig func(env config.LookupEnv) (any, error)
	// Open makes a provider from the decoded config and the provider of the block's compute. nil
	// means the type cannot do its job yet: drover validate refuses its blocks.
	Open func(ctx context.Context, cfg any, env config.Env, on compute.Provider) (Provider, error)
}

// Available reports whether the type can be opened.
func (f Factory) Available() bool { return f.Open != nil }

// Moves reports whether the type moves addresses between instances of computeType.
func (f Factory) Moves(computeType string) bool { return slices.Contains(f.Computes, computeType) }

// Addresser is implemented by providers whose block names one address (most do): the rollout's
// cutover moves that one.
type Addresser interface {
	Address() netip.Addr
}
