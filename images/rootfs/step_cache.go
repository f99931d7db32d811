package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepCache ends the build at once when the catalog already holds an image of this identity: the
// whole point of content addressing is that an unchanged role costs one stat. With a shared catalog,
// an image another machine built and published everywhere the role deploys is not built either
// (Request.Cached).
type stepCache struct{}

func (s *stepCache) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	m, ok, err := req.Cached()
	if err != nil {
		return fail(state, err)
	}
	if !ok {
		return multistep.ActionContinue
	}
	state.Put(keyResult, &Result{Manifest: m, Cached: true, Elsewhere: m.DiskElsewhere()})
	return multistep.ActionHalt
}

func (s *stepCache) Cleanup(multistep.StateBag) {}
