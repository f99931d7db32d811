package rootfs

import (
	"context"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepContainers copies the role's container images, pinned by digest, from their registries into
// the tree's container store, and enables their units (written by stepFiles). It is the only step
// that reaches a registry, and it runs only when the identity is not in the catalog: a rebuild of
// an unchanged role does not pull. What it wrote goes with the work tree; its scratch directory
// (the store's run root) is removed at once.
type stepContainers struct{}

func (s *stepContainers) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if len(req.Containers) == 0 {
		return multistep.ActionContinue
	}
	scratch := stagingPath(state, "containers")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fail(state, err)
	}
	defer os.RemoveAll(scratch)
	for _, c := range req.Containers {
		if err := tree.CopyContainer(ctx, treeDir(state), scratch, c, logWriter(state)); err != nil {
			return fail(state, err)
		}
	}
	for _, unit := range req.ContainerUnits {
		if err := tree.EnableUnit(treeDir(state), unit, "multi-user.target"); err != nil {
			return fail(state, err)
		}
	}
	return multistep.ActionContinue
}

func (s *stepContainers) Cleanup(multistep.StateBag) {}
