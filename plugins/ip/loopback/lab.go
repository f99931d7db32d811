package loopback

import (
	"context"
	"net/netip"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
)

// lab is what the failover IP needs from the compute provider. *qemu.Provider
// is the one implementation outside tests, adapted by qemuLab; tests use a
// fake that simulates bind conflicts without VMs.
type lab interface {
	// Instances lists the lab's instances, as compute.Provider does.
	Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error)
	// Monitor connects to a running instance's monitor; an unknown
	// instance is an error wrapping compute.ErrNotFound.
	Monitor(ctx context.Context, id string) (monitor, error)
}

// monitor changes one instance's host forwards. Its errors name the
// instance.
type monitor interface {
	Forwards(ctx context.Context) ([]qemu.Forward, error)
	AddForward(ctx context.Context, f qemu.Forward) error
	RemoveForward(ctx context.Context, host netip.AddrPort) error
	Close() error
}

type qemuLab struct{ p *qemu.Provider }

func (l qemuLab) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	return l.p.Instances(ctx, sel)
}

func (l qemuLab) Monitor(ctx context.Context, id string) (monitor, error) {
	m, err := l.p.Monitor(ctx, id)
	if err != nil {
		return nil, err
	}
	return m, nil
}
