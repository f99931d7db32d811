// Package ip defines failover IPs: an address that stays the same while the
// instance behind it changes, the cutover of a role that does not use DNS.
//
// A Provider only says who holds an address and moves it; the rollout
// controller decides when. Every implementation passes the contract suite in
// package iptest.
package ip

import (
	"context"
	"errors"
	"net/netip"
)

// ErrUnknownInstance means Assign was given an instance the provider cannot
// find (never launched, or terminated). The address is left as it was.
var ErrUnknownInstance = errors.New("ip: unknown instance")

// Provider moves failover addresses between instances.
//
// Implementations are safe for concurrent use, and those whose state
// outlives the process are also safe across processes: two Assigns of one
// address never interleave. Every method honours ctx: a context done before
// the call has any effect makes it fail with an error wrapping ctx.Err() and
// change nothing.
type Provider interface {
	// Holder returns the ID of the instance that holds addr now, or "" when
	// none does (never assigned, or its holder is gone). It reports what the
	// platform says, not what was last asked for.
	Holder(ctx context.Context, addr netip.Addr) (instanceID string, err error)

	// Assign makes instanceID the holder of addr, taking it from the current
	// holder if there is one. It is idempotent: assigning the holder again
	// changes nothing (and repairs a half-made assignment). An unknown
	// instance is an error wrapping ErrUnknownInstance.
	//
	// When Assign fails part way, the address is held by the old holder or
	// the new one, or, when the provider cannot restore the old one, by no
	// one; Holder says which, and a retry of Assign finishes the move.
	Assign(ctx context.Context, addr netip.Addr, instanceID string) error
}
