package rootfs

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// stepWorkTree makes the work tree the next steps change, in the staging directory: an overlay of
// the cached base tree (tree.Overlay: nothing is copied, and what the build writes is known), or,
// where overlayfs cannot be mounted, a copy. It is removed when the build ends, whatever happened:
// only the disk is kept.
type stepWorkTree struct {
	dir     string
	overlay *tree.Overlay
}

func (s *stepWorkTree) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	base := state.Get(keyBase).(string)
	o, err := tree.MountOverlay(base, state.Get(keyStaging).(*images.Staging).Dir)
	if err == nil {
		s.overlay = o
		state.Put(keyOverlay, o)
		state.Put(keyTree, o.Merged)
	} else {
		fmt.Fprintf(logWriter(state), "work tree: %v; copying the base tree instead\n", err)
		s.dir = stagingPath(state, "tree")
		if err := tree.Copy(ctx, base, s.dir); err != nil {
			return fail(state, err)
		}
		state.Put(keyTree, s.dir)
		// Clamped now, most copied files keep the ctime of the copy through hygiene's own clamping.
		if err := tree.ClampTimes(s.dir, request(state).Epoch); err != nil {
			return fail(state, err)
		}
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
	if s.overlay != nil {
		_ = s.overlay.Remove()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
