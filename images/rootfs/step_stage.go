package rootfs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
)

// stepStage creates the staging directory the image is written into and opens the build log in it.
// Its Cleanup removes the staging directory unless the manifest step committed it to the catalog.
type stepStage struct {
	log *os.File
}

func (s *stepStage) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	staging, err := req.Catalog.Stage(req.Identity())
	if err != nil {
		return fail(state, err)
	}
	state.Put(keyStaging, staging)
	s.log, err = os.Create(filepath.Join(staging.Dir, "build.log"))
	if err != nil {
		return fail(state, err)
	}
	var w io.Writer = s.log
	if req.Progress != nil {
		w = io.MultiWriter(s.log, req.Progress.Output(req.Role))
	}
	state.Put(keyLog, w)
	return multistep.ActionContinue
}

func (s *stepStage) Cleanup(state multistep.StateBag) {
	if s.log != nil {
		_ = s.log.Close()
	}
	if _, committed := state.GetOk(keyResult); committed {
		return
	}
	v, ok := state.GetOk(keyStaging)
	if !ok {
		return
	}
	staging := v.(*images.Staging)
	// The log of a failed build is what its user reads next: keep it out of the catalog, which
	// only ever holds complete images.
	if s.log != nil {
		req := request(state)
		if kept, err := req.Catalog.KeepFailedLog(req.Role, s.log.Name(), time.Now()); err == nil {
			if e, ok := state.GetOk(keyError); ok {
				e.(*StepError).Log = kept
			}
		}
	}
	_ = staging.Discard()
}
