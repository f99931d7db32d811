package rootfs

import (
	"context"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
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
	// Clamped now, most copied files keep the ctime of the copy through hygiene's own clamping.
	if err := tree.ClampTimes(s.dir, request(state).Epoch); err != nil {
		return fail(state, err)
	}
	// The change time of a file written now, on the work tree's filesystem and by its clock: every
	// file of the copy is older, every later change is not (stepSBOM reuses the hashes of the rest).
	marker := stagingPath(state, ".copied")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fail(state, err)
	}
	fi, err := os.Stat(marker)
	if err != nil {
		return fail(state, err)
	}
	if ct := images.ChangeTime(fi); !ct.IsZero() {
		state.Put(keyCopied, ct)
	}
	if err := os.Remove(marker); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepWorkTree) Cleanup(multistep.StateBag) {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
