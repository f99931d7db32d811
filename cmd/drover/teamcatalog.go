package main

import (
	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
)

// sharesCatalog reports whether the fleet's state store is one a team shares (any store block of a
// type other than the default local file, such as etcd): then the catalog's manifests and published
// references are kept in it too (images/shared.go), so that every machine using the fleet sees what
// any of them built and published. With the local store the catalog stays the state directory's.
func (a *app) sharesCatalog(f *fleet.Fleet) bool {
	return f != nil && f.Store != nil && f.Store.Type != a.registry().DefaultStore()
}

// shareCatalog opens the fleet's store for cat when the fleet shares its catalog (sharesCatalog),
// closed when the command ends. Without a fleet file that loads, the catalog stays local.
func (a *app) shareCatalog(c *cli.Context, f *fleet.Fleet, cat *images.Catalog) (*images.Catalog, error) {
	if !a.sharesCatalog(f) {
		return cat, nil
	}
	st, err := a.openStore(c.Context, f, a.stateDir(c, f))
	if err != nil {
		return nil, failed(err, "the fleet's store block names the state store the team's catalog is in: check that it is reachable")
	}
	a.closeAtExit(func() { st.Close() })
	return cat.Share(c.Context, st), nil
}

// closeAtExit runs fn when the command has finished (runApp).
func (a *app) closeAtExit(fn func()) { a.closers = append(a.closers, fn) }

func (a *app) runClosers() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
