package rootfs

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// pinner gives a request the package set of its role's newest image of the same recipe, so that an
// unchanged role keeps its image until a refresh finds a package it has in another version.
type pinner struct {
	list       func() ([]*images.Manifest, error)
	candidates func(context.Context, tree.BaseSpec, []tree.Repository) (map[string]string, error)
}

// pin sets req.Inputs.PackageSet. A recipe with no image yet keeps the empty set: its build takes
// the mirror as it is. Otherwise the request takes the newest image's set, and with refresh, when
// the mirror now offers another version of one of that image's packages, the digest of what a
// build would get now, with req.Refresh saying which packages changed. It changes nothing else.
func (p pinner) pin(ctx context.Context, req *Request, refresh bool) error {
	all, err := p.list()
	if err != nil {
		return fmt.Errorf("rootfs: role %q: reading the catalog: %w", req.Role, err)
	}
	prev := images.NewestOfRecipe(all, req.Role, req.Inputs.Recipe())
	if prev == nil {
		return nil
	}
	req.Inputs.PackageSet = prev.Inputs.PackageSet
	if !refresh {
		return nil
	}
	offered, err := p.candidates(ctx, req.Base, req.Repositories)
	if err != nil {
		return fmt.Errorf("rootfs: role %q: asking the mirror for its package versions: %w", req.Role, err)
	}
	digest, changed := images.CheckPackages(prev.Packages, offered)
	if len(changed) == 0 {
		return nil
	}
	req.Inputs.PackageSet = digest
	req.Refresh = &images.Refresh{Predecessor: prev.Identity, Changed: changed}
	return nil
}
