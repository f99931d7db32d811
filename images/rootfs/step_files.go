package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepFiles copies the role's files into the tree with their modes and owners. The work tree's
// Cleanup takes them away with everything else.
type stepFiles struct{}

func (s *stepFiles) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if err := tree.InstallFiles(treeDir(state), request(state).Files); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepFiles) Cleanup(multistep.StateBag) {}
