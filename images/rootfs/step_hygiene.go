package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepHygiene removes what must not be baked (machine-id, SSH host keys, apt lists, logs, history,
// the build host's names) and clamps file times to SOURCE_DATE_EPOCH.
type stepHygiene struct{}

func (s *stepHygiene) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	if o, ok := state.GetOk(keyOverlay); ok {
		if err := tree.HygieneOverlay(o.(*tree.Overlay), request(state).Epoch); err != nil {
			return fail(state, err)
		}
		return multistep.ActionContinue
	}
	if err := tree.Hygiene(treeDir(state), request(state).Epoch); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepHygiene) Cleanup(multistep.StateBag) {}
