package loopback

import (
	"context"

	"github.com/drover-dev/drover/plugins/compute"
)

// lab is what the failover IP needs from the compute provider its block names: the instances, and
// their port forwards to move (compute.PortForwarder, which the lab's qemu implements). Tests use a
// fake that simulates bind conflicts without VMs.
type lab interface {
	// Instances lists the lab's instances, as compute.Provider does.
	Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error)
	compute.PortForwarder
}
