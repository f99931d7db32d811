package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/plugins/compute"
)

// PublishTarget is a compute block whose provider boots its own copy of an image.
type PublishTarget struct {
	Compute   string // the fleet's compute block
	Type      string // its provider type
	Publisher compute.Publisher
}

// PublishResult is what PublishTo did.
type PublishResult struct {
	Ref   PublishedRef
	Image compute.PublishedImage // what compute.Image.Published takes
	// Existing is true when the provider already had a copy: nothing was uploaded.
	Existing bool
}

// PublishSource is what a provider is given to publish an image: its raw disk and what the platform
// needs to know of it. An image without a raw disk cannot be published.
func (c *Catalog) PublishSource(m *Manifest) (compute.PublishSource, error) {
	if m.elsewhere {
		return compute.PublishSource{}, missingDisk(m, "be published from here")
	}
	art := m.Artifact("raw")
	if art == nil {
		return compute.PublishSource{}, fmt.Errorf("images: %s@%s has no raw disk to publish (drover build --force %s makes one)", m.Role, m.ShortID(), m.Role)
	}
	path := filepath.Join(c.ImageDir(m.Identity), art.File)
	fi, err := os.Stat(path)
	if err != nil {
		return compute.PublishSource{}, fmt.Errorf("images: %s@%s: its raw disk: %w (drover build --force %s makes it again)", m.Role, m.ShortID(), err, m.Role)
	}
	size := art.Length
	if size == 0 { // manifests of tests and old builds may lack it; the file says
		size = fi.Size()
	}
	sum := art.SHA256
	if sum == "" {
		sum = m.ArtifactSHA256
	}
	return compute.PublishSource{Identity: m.Identity, Role: m.Role, Arch: m.Arch, Path: path, Size: size, SHA256: sum}, nil
}

// PublishTo makes sure the target's provider has a copy of the image, and records it in the catalog.
// The provider is asked first (it is the truth, and a copy deleted outside drover must not be
// launched from); only when it has none is the raw disk published, with progress. Publishing is
// idempotent by the image's identity, so running PublishTo again, or after a killed run, uploads
// nothing once the copy is complete and resumes or restarts an interrupted upload as the provider's
// Publish documents. When recording fails the copy exists but is not listed by images show; the next
// PublishTo (or rollout) records it.
func (c *Catalog) PublishTo(ctx context.Context, m *Manifest, to PublishTarget, progress func(compute.PublishProgress)) (PublishResult, error) {
	img, ok, err := to.Publisher.Published(ctx, m.Identity)
	if err != nil {
		return PublishResult{}, fmt.Errorf("images: looking up %s@%s on compute %q: %w", m.Role, m.ShortID(), to.Compute, err)
	}
	res := PublishResult{Existing: ok}
	if !ok {
		src, err := c.PublishSource(m)
		if err != nil {
			return PublishResult{}, err
		}
		if img, err = to.Publisher.Publish(ctx, src, progress); err != nil {
			return PublishResult{}, fmt.Errorf("images: publishing %s@%s to compute %q: %w", m.Role, m.ShortID(), to.Compute, err)
		}
	}
	res.Image = img
	res.Ref = PublishedRef{Compute: to.Compute, Type: to.Type, Region: img.Region, ID: img.ID, Created: img.Created.UTC().Round(0)}
	if err := c.RecordPublished(m.Identity, res.Ref); err != nil {
		return res, err
	}
	return res, nil
}
