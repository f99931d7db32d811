package rootfs

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepBaseTree gets the base tree (suite, mirror, snapshot, arch and the full package set) from the
// tree cache, running mmdebstrap only on a miss. The cache owns the tree: nothing to clean up here.
type stepBaseTree struct{}

func (s *stepBaseTree) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	dir, hit, err := req.Cache.Base(ctx, req.Base, logWriter(state))
	if err != nil {
		return fail(state, err)
	}
	if hit {
		fmt.Fprintf(logWriter(state), "base tree %s: cached\n", req.Base.Key()[:12])
	}
	state.Put(keyBase, dir)
	return multistep.ActionContinue
}

func (s *stepBaseTree) Cleanup(multistep.StateBag) {}
