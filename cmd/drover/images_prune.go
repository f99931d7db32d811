package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
)

// openPublisher returns the compute.Publisher of a compute block, to delete the copies published
// on it.
type openPublisher func(ctx context.Context, block string) (compute.Publisher, error)

// pruneResult is what images prune did, as --output json prints it.
type pruneResult struct {
	Removed     []map[string]any `json:"removed"`
	Unpublished []prunedCopy     `json:"unpublished"`
	Kept        []keptImage      `json:"kept"` // images due for removal whose copies could not be deleted
}

type prunedCopy struct {
	Image string `json:"image"`
	Role  string `json:"role"`
	images.PublishedRef
}

type keptImage struct {
	Image  string `json:"image"`
	Role   string `json:"role"`
	Reason string `json:"reason"`
}

func (a *app) imagesPrune(c *cli.Context) error {
	if c.Int("keep") < 1 {
		return usageError("--keep must be at least 1", "")
	}
	cat, err := a.catalog(c)
	if err != nil {
		return err
	}
	f, err := a.pruneFleet(c)
	if err != nil {
		return failed(err, "the state store could not be read; nothing was removed")
	}
	inUse, err := a.imagesInUse(c.Context, c, f)
	if err != nil {
		return failed(err, "the state store could not be read; nothing was removed")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := pruneImages(ctx, cat, c.Int("keep"), func(id string) bool { return inUse[id] }, a.fleetPublishers(c, f))
	if a.json() {
		writeJSON(a.stdout, res)
	} else {
		for _, u := range res.Unpublished {
			fmt.Fprintf(a.stdout, "unpublished %s@%s from %s (%s): %s%s\n", u.Role, images.ShortID(u.Image), u.Compute, u.Type, u.ID, inRegionText(u.Region))
		}
		for _, m := range res.Removed {
			fmt.Fprintf(a.stdout, "removed %s@%s\n", m["role"], images.ShortID(m["identity"].(string)))
		}
		for _, k := range res.Kept {
			fmt.Fprintf(a.stdout, "kept %s@%s: %s\n", k.Role, images.ShortID(k.Image), k.Reason)
		}
		fmt.Fprintf(a.stdout, "%d image(s) removed, %d published copy(ies) deleted\n", len(res.Removed), len(res.Unpublished))
	}
	if err != nil {
		return &failure{code: exitFailure, reason: err.Error(), err: err, printedJSON: a.json()}
	}
	if len(res.Kept) > 0 {
		return &failure{code: exitFailure, printedJSON: a.json(),
			reason: fmt.Sprintf("%d image(s) kept: their published copies could not be deleted", len(res.Kept)),
			hint:   "fix what each line says and run drover images prune again; it deletes what is left"}
	}
	return nil
}

// pruneImages removes what Catalog.Prunable names, each image's published copies first. An image
// whose copies cannot all be deleted stays in the catalog, with the references of those not yet
// deleted, so a later prune finishes the job. In-use images are never candidates, so neither are their
// copies.
func pruneImages(ctx context.Context, cat *images.Catalog, keep int, inUse func(string) bool, open openPublisher) (pruneResult, error) {
	res := pruneResult{Removed: []map[string]any{}, Unpublished: []prunedCopy{}, Kept: []keptImage{}}
	prunable, err := cat.Prunable(keep, inUse)
	if err != nil {
		return res, err
	}
	for _, m := range prunable {
		refs, err := cat.Published(m.Identity)
		if err != nil {
			res.Kept = append(res.Kept, keptImage{Image: m.Identity, Role: m.Role, Reason: err.Error()})
			continue
		}
		var problems []string
		for _, ref := range refs {
			if err := unpublish(ctx, open, m.Identity, ref); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			if err := cat.ForgetPublished(m.Identity, ref); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			res.Unpublished = append(res.Unpublished, prunedCopy{Image: m.Identity, Role: m.Role, PublishedRef: ref})
		}
		if len(problems) > 0 {
			res.Kept = append(res.Kept, keptImage{Image: m.Identity, Role: m.Role, Reason: strings.Join(problems, "; ")})
			continue
		}
		if err := cat.Remove(m.Identity); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, imageSummary(m))
	}
	return res, nil
}

// autoPruneWait bounds how long the build's prune waits for the state store: a rollout holding it
// must not hold up a build that is done, and pruning can wait for the next build.
const autoPruneWait = 3 * time.Second

// autoPrune is the build's own prune (drover { keep_images }): after a build that added an image,
// each role keeps its newest keep_images images and every image a rollout still uses; the others
// go, with their published copies. It never fails the build and never removes an image when it
// cannot read which are in use: what it could not do is a note, and drover images prune (or the
// next build) finishes it.
func (a *app) autoPrune(ctx context.Context, c *cli.Context, f *fleet.Fleet, outcomes []buildOutcome, p *buildProgress) {
	built := false
	for _, o := range outcomes {
		built = built || (o.err == nil && o.result != nil && !o.result.Cached)
	}
	if !built || f.KeepImages == 0 || ctx.Err() != nil {
		return
	}
	cat, err := a.shareCatalog(c, f, images.OpenCatalog(a.stateDir(c, f))) // the build's catalog: the fleet may name a state_dir
	if err != nil {
		p.note("images", "old images not pruned: "+err.Error())
		return
	}
	wait, cancel := context.WithTimeout(ctx, autoPruneWait)
	inUse, err := a.imagesInUse(wait, c, f)
	cancel()
	if err != nil {
		p.note("images", "old images not pruned: which images rollouts use could not be read ("+err.Error()+"); drover images prune removes them later")
		return
	}
	res, err := pruneImages(ctx, cat, f.KeepImages, func(id string) bool { return inUse[id] }, a.fleetPublishers(c, f))
	for _, u := range res.Unpublished {
		p.note(u.Role, fmt.Sprintf("unpublished old image %s from %s: %s%s", images.ShortID(u.Image), u.Compute, u.ID, inRegionText(u.Region)))
	}
	for _, m := range res.Removed {
		p.note(fmt.Sprint(m["role"]), fmt.Sprintf("pruned old image %s (keep_images = %d; images rollouts use are kept)", images.ShortID(fmt.Sprint(m["identity"])), f.KeepImages))
	}
	for _, k := range res.Kept {
		p.note(k.Role, fmt.Sprintf("old image %s kept: %s", images.ShortID(k.Image), k.Reason))
	}
	if err != nil {
		p.note("images", "pruning old images stopped: "+err.Error())
	}
}

func unpublish(ctx context.Context, open openPublisher, identity string, ref images.PublishedRef) error {
	pub, err := open(ctx, ref.Compute)
	if err != nil {
		return err
	}
	img := compute.PublishedImage{Identity: identity, ID: ref.ID, Region: ref.Region, Created: ref.Created}
	if err := pub.Unpublish(ctx, img); err != nil {
		return fmt.Errorf("deleting %s%s on compute %q: %w", ref.ID, inRegionText(ref.Region), ref.Compute, err)
	}
	return nil
}

// fleetPublishers opens compute blocks for prune: those of loaded when the caller has the fleet,
// else of the fleet file, loaded on first use (pruning images never published needs no fleet).
func (a *app) fleetPublishers(c *cli.Context, loaded *fleet.Fleet) openPublisher {
	var (
		f       = loaded
		p       *providers
		loadErr error
	)
	return func(ctx context.Context, block string) (compute.Publisher, error) {
		if f == nil && loadErr == nil {
			f, loadErr = a.requireFleet(c)
		}
		if p == nil && loadErr == nil {
			p = a.newProviders(f, a.stateDir(c, f))
		}
		if loadErr != nil {
			return nil, fmt.Errorf("the copy on compute %q is deleted through the fleet file, which could not be read: %w", block, loadErr)
		}
		blk := f.Provider(fleet.KindCompute, block)
		if blk == nil {
			return nil, fmt.Errorf("compute block %q, which the copy was published on, is no longer in %s (put it back to delete the copy)", block, f.Path)
		}
		prov, err := p.Compute(ctx, block)
		if err != nil {
			return nil, err
		}
		pub, ok := prov.(compute.Publisher)
		if !ok {
			return nil, fmt.Errorf("compute %q (type %s) cannot delete published images", block, blk.Type)
		}
		return pub, nil
	}
}
