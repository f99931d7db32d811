package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepCache ends the build at once when the catalog already holds an image of this identity: the
// whole point of content addressing is that an unchanged role costs one stat.
type stepCache struct{}

func (s *stepCache) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if req.Force || !req.Catalog.Has(req.Identity()) {
		return multistep.ActionContinue
	}
	m, err := req.Catalog.Get(req.Identity())
	if err != nil {
		return fail(state, err)
	}
	state.Put(keyResult, &Result{Manifest: m, Cached: true})
	return multistep.ActionHalt
}

func (s *stepCache) Cleanup(multistep.StateBag) {}
