package rootfs

import (
	"context"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepWorkTree copies the cached base tree into the staging directory, where the next steps change
// it. The copy is removed when the build ends, whatever happened: only the disk is kept.
type stepWorkTree struct {
	dir string
}

func (s *stepWorkTree) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	s.dir = stagingPath(state, "tree")
	if err := tree.Copy(ctx, state.Get(keyBase).(string), s.dir); err != nil {
		return fail(state, err)
	}
	state.Put(keyTree, s.dir)
	return multistep.ActionContinue
}

func (s *stepWorkTree) Cleanup(multistep.StateBag) {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
