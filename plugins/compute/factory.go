package compute

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/drover-dev/drover/plugins/config"
)

// Factory makes compute providers of one type; plugins/all lists one per type.
type Factory = config.Factory[Provider]

// Forward is a TCP host forward of an instance: connections to Host on drover's machine reach the
// instance's GuestPort.
type Forward struct {
	Host      netip.AddrPort
	GuestPort int
}

func (f Forward) String() string { return fmt.Sprintf("tcp:%s-:%d", f.Host, f.GuestPort) }

// PortForwarder is implemented by providers whose instances are reached through host port forwards
// (the lab's qemu user networking). A failover address on such a provider is a set of forwards moved
// from one instance to another (plugins/ip/loopback).
type PortForwarder interface {
	// PortForwards opens the forwards of one running instance for reading and changing; an unknown
	// or stopped instance is an error wrapping ErrNotFound. The caller closes it.
	PortForwards(ctx context.Context, id string) (ForwardSession, error)
}

// ForwardSession reads and changes one instance's forwards. Its calls are quick (a move between two
// sessions leaves a port unbound only between two calls), not safe for concurrent use, and each
// either happened or did not: a failed AddForward added nothing. Errors name the instance.
type ForwardSession interface {
	Forwards(ctx context.Context) ([]Forward, error)
	// AddForward fails when the host address and port cannot be bound, for instance while another
	// instance still forwards them.
	AddForward(ctx context.Context, f Forward) error
	// RemoveForward removes the forward of host; one that does not exist is not an error.
	RemoveForward(ctx context.Context, host netip.AddrPort) error
	Close() error
}

// HostRouter is implemented by providers whose instances reach a service on drover's own machine
// by another address than the one drover uses (the lab's VMs reach this machine's loopback through
// their gateway). Commands that hand instances the address of such a service (Vault) ask it.
type HostRouter interface {
	// RouteToHost returns how an instance reaches addr, a loopback address of this machine, and the
	// networks its connections then come from as the service sees them. ok is false when the
	// provider has no route for addr, and instances use addr as it is.
	RouteToHost(addr netip.Addr) (guest netip.Addr, from []netip.Prefix, ok bool)
}
