package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepRun runs the role's shell commands inside the tree (a chroot; no service starts). tree.Run
// unmounts what it mounted before it returns, on failure and cancellation too.
type stepRun struct{}

func (s *stepRun) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if len(req.Run) == 0 {
		return multistep.ActionContinue
	}
	if err := tree.Run(ctx, treeDir(state), req.Run, logWriter(state)); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepRun) Cleanup(multistep.StateBag) {}
