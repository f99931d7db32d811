package digitalocean

// Publish: the raw disk, gzip-compressed (what DigitalOcean's import accepts besides raw, and
// mostly-empty disks shrink to their data), is uploaded to the block's Spaces bucket (multipart,
// resumable: package objstore), and DigitalOcean imports it as a custom image from a presigned
// URL in the block's region (POST /v2/images). Once the image is available the object is deleted.
//
// A copy is known by the tag drover-image-HEX (HEX: the identity's digest) and its name, which
// ends with the region: images of one identity in other regions carry the same tag.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/doapi"
	"github.com/drover-dev/drover/plugins/internal/objstore"
)

var _ compute.Publisher = (*Provider)(nil)

// presignTTL is how long the import may take to start reading the object.
const presignTTL = time.Hour

// imageTag and objectKey name what a Publish of identity makes.
func imageTag(identity string) string  { return imageTagPrefix + digest(identity) }
func objectKey(identity string) string { return "drover/" + digest(identity) + ".raw.gz" }

// imageName is the custom image's name: the role (for people), the digest, the region.
func (p *Provider) imageName(role, identity string) string {
	role = dropletName(role, identity)
	if len(role) > 30 {
		role = role[:30]
	}
	return "drover-" + role + "-" + digest(identity)[:16] + "-" + p.cfg.Region
}

// store is the block's Spaces bucket.
func (p *Provider) store() (*objstore.Store, error) {
	if p.cfg.SpacesKey == "" || p.cfg.SpacesSecret == "" {
		return nil, errors.New("digitalocean: no Spaces access key to upload images with: set SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY (or their _FILE forms)")
	}
	s, err := objstore.New(objstore.Config{Endpoint: p.cfg.spacesEndpoint(), Bucket: p.cfg.SpacesBucket,
		AccessKeyID: p.cfg.SpacesKey, SecretAccessKey: p.cfg.SpacesSecret, HTTPClient: p.spaces.client, UsePathStyle: p.spaces.pathStyle || p.cfg.SpacesPathStyle})
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	return s, nil
}

// Publish implements compute.Publisher. It is idempotent by src.Identity: an available image of
// the identity in the region is returned without uploading; one being imported (by an earlier
// or concurrent Publish, also of another process) is waited for; one whose import failed is
// deleted and the identity published again. An interrupted upload is resumed (objstore); an
// interrupted import is waited for by the next Publish. Concurrent Publishes in one process share
// one upload; across processes two may both import, and the one that did not make the oldest
// image deletes its own.
//
// Progress: PhaseUpload counts the compressed bytes stored (Total the compressed size), then
// PhaseImport events, without bytes, while DigitalOcean imports.
func (p *Provider) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("digitalocean: %w", err)
	}
	if err := src.Validate(); err != nil {
		return compute.PublishedImage{}, err
	}
	if src.Arch != "amd64" {
		return compute.PublishedImage{}, fmt.Errorf("digitalocean: publish %s: droplets are amd64, the image is %s", src.Identity, src.Arch)
	}
	if st, err := os.Stat(src.Path); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("digitalocean: publish %s: %w", src.Identity, err)
	} else if st.Size() != src.Size {
		return compute.PublishedImage{}, fmt.Errorf("digitalocean: publish %s: %s is %d bytes, the catalog says %d: refusing a truncated or changed disk", src.Identity, src.Path, st.Size(), src.Size)
	}
	if progress == nil {
		progress = func(compute.PublishProgress) {}
	}
	store, err := p.store()
	if err != nil {
		return compute.PublishedImage{}, err
	}
	unlock, err := p.publishing.Lock(ctx, src.Identity)
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("digitalocean: %w", err)
	}
	defer unlock()
	for {
		imgs, err := p.images(ctx, src.Identity)
		if err != nil {
			return compute.PublishedImage{}, err
		}
		var pending *godo.Image
		for i := range imgs {
			switch imgs[i].Status {
			case "available":
				if err := store.Delete(ctx, objectKey(src.Identity)); err != nil {
					return compute.PublishedImage{}, fmt.Errorf("digitalocean: %w", err)
				}
				return p.published(src.Identity, imgs[i]), nil
			case "NEW", "pending":
				pending = &imgs[i]
			default: // deleted, retired: a failed import; start over
				if err := p.deleteImage(ctx, imgs[i].ID); err != nil {
					return compute.PublishedImage{}, err
				}
			}
		}
		if pending != nil {
			img, err := p.waitImport(ctx, pending.ID, progress)
			if err != nil {
				return compute.PublishedImage{}, err
			}
			if img != nil {
				continue // available now: the loop returns it and deletes the object
			}
			continue // its import failed: the loop deletes it and starts over
		}
		if err := p.upload(ctx, store, src, progress); err != nil {
			return compute.PublishedImage{}, err
		}
		if _, err := p.startImport(ctx, store, src); err != nil {
			return compute.PublishedImage{}, err
		}
	}
}

// upload compresses src next to a temporary directory and uploads it to objectKey.
func (p *Provider) upload(ctx context.Context, store *objstore.Store, src compute.PublishSource, progress func(compute.PublishProgress)) error {
	dir, err := os.MkdirTemp("", "drover-do-publish-")
	if err != nil {
		return fmt.Errorf("digitalocean: publish %s: %w", src.Identity, err)
	}
	defer os.RemoveAll(dir)
	gz := filepath.Join(dir, "disk.raw.gz")
	if _, err := objstore.CompressGzip(ctx, src.Path, gz); err != nil {
		return fmt.Errorf("digitalocean: publish %s: %w", src.Identity, err)
	}
	err = store.Upload(ctx, objectKey(src.Identity), gz, func(sent, total int64) {
		progress(compute.PublishProgress{Phase: compute.PhaseUpload, Done: sent, Total: total})
	})
	if err != nil {
		return fmt.Errorf("digitalocean: publish %s: uploading to Spaces bucket %s (a retry resumes it): %w", src.Identity, p.cfg.SpacesBucket, err)
	}
	return nil
}

// startImport asks DigitalOcean to import the uploaded object, then settles a race with another
// process importing the same identity.
func (p *Provider) startImport(ctx context.Context, store *objstore.Store, src compute.PublishSource) (int, error) {
	url, err := store.Presign(ctx, objectKey(src.Identity), presignTTL)
	if err != nil {
		return 0, fmt.Errorf("digitalocean: publish %s: %w", src.Identity, err)
	}
	req := &godo.CustomImageCreateRequest{Name: p.imageName(src.Role, src.Identity), Url: url, Region: p.cfg.Region,
		Distribution: "Debian", Description: "drover image " + src.Identity + " (role " + src.Role + ")", Tags: []string{markerTag, imageTag(src.Identity)}}
	img, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("importing image %s into %s", req.Name, p.cfg.Region), func(ctx context.Context) (*godo.Image, *godo.Response, error) {
		return p.c.Images.Create(ctx, req)
	})
	if err != nil {
		return 0, fmt.Errorf("digitalocean: publish %s: %w", src.Identity, err)
	}
	imgs, err := p.images(ctx, src.Identity)
	if err != nil {
		return 0, err
	}
	for _, other := range imgs {
		if other.ID < img.ID && other.Status != "deleted" && other.Status != "retired" {
			return other.ID, p.deleteImage(ctx, img.ID) // another process imports it too, first
		}
	}
	return img.ID, nil
}

// waitImport polls image id until its import ends: the image when available, nil when it failed
// (the caller deletes it and starts over), an error when ctx ends or the API fails.
func (p *Provider) waitImport(ctx context.Context, id int, progress func(compute.PublishProgress)) (*godo.Image, error) {
	w := p.poller()
	for {
		progress(compute.PublishProgress{Phase: compute.PhaseImport})
		img, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading image %d", id), func(ctx context.Context) (*godo.Image, *godo.Response, error) {
			return p.c.Images.GetByID(ctx, id)
		})
		switch {
		case doapi.NotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("digitalocean: waiting for the import of image %d: %w", id, err)
		case img.Status == "available":
			return img, nil
		case img.Status != "NEW" && img.Status != "pending":
			return nil, fmt.Errorf("digitalocean: DigitalOcean could not import image %d (%s): %s", id, img.Name, orNone(img.ErrorMessage))
		}
		if err := w.wait(ctx); err != nil {
			return nil, fmt.Errorf("digitalocean: waiting for the import of image %d (a retry waits on): %w", id, err)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "it gave no reason"
	}
	return s
}

// Published implements compute.Publisher: the available image of identity in the region.
func (p *Provider) Published(ctx context.Context, identity string) (compute.PublishedImage, bool, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, false, fmt.Errorf("digitalocean: %w", err)
	}
	imgs, err := p.images(ctx, identity)
	if err != nil {
		return compute.PublishedImage{}, false, err
	}
	for _, img := range imgs {
		if img.Status == "available" {
			return p.published(identity, img), true, nil
		}
	}
	return compute.PublishedImage{}, false, nil
}

// Unpublish implements compute.Publisher: it deletes every image of ref.Identity in the region
// (available, importing or failed), the image ref.ID, and the uploaded object with any unfinished
// upload of it.
func (p *Provider) Unpublish(ctx context.Context, ref compute.PublishedImage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	if ref.Region != "" && ref.Region != p.cfg.Region {
		return fmt.Errorf("digitalocean: unpublish image %s: it is in %s, this block publishes in %s", ref.ID, ref.Region, p.cfg.Region)
	}
	store, err := p.store()
	if err != nil {
		return err
	}
	imgs, err := p.images(ctx, ref.Identity)
	if err != nil {
		return err
	}
	if id, err := strconv.Atoi(ref.ID); err == nil && !slices.ContainsFunc(imgs, func(i godo.Image) bool { return i.ID == id }) {
		if err := p.deleteImage(ctx, id); err != nil {
			return err
		}
	}
	for _, img := range imgs {
		if err := p.deleteImage(ctx, img.ID); err != nil {
			return err
		}
	}
	if err := store.Delete(ctx, objectKey(ref.Identity)); err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	return nil
}

// images lists the images of identity in the region (by tag, then by the name's region), oldest
// first.
func (p *Provider) images(ctx context.Context, identity string) ([]godo.Image, error) {
	tag := imageTag(identity)
	all, err := doapi.All(ctx, p.c, "listing images tagged "+tag, p.perPage, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Image, *godo.Response, error) {
		return p.c.Images.ListByTag(ctx, tag, opt)
	})
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	all = slices.DeleteFunc(all, func(i godo.Image) bool {
		return !slices.Contains(i.Tags, tag) || !strings.HasSuffix(i.Name, "-"+p.cfg.Region)
	})
	slices.SortFunc(all, func(a, b godo.Image) int { return a.ID - b.ID })
	return all, nil
}

func (p *Provider) deleteImage(ctx context.Context, id int) error {
	_, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("deleting image %d", id), func(ctx context.Context) (struct{}, *godo.Response, error) {
		res, err := p.c.Images.Delete(ctx, id)
		return struct{}{}, res, err
	})
	if err != nil && !doapi.NotFound(err) {
		return fmt.Errorf("digitalocean: %w", err)
	}
	return nil
}

func (p *Provider) published(identity string, img godo.Image) compute.PublishedImage {
	ref := compute.PublishedImage{Identity: identity, ID: strconv.Itoa(img.ID), Region: p.cfg.Region}
	if t, err := time.Parse(time.RFC3339, img.Created); err == nil {
		ref.Created = t
	}
	return ref
}

// spacesOptions reach the Spaces bucket (tests: a lab on loopback).
type spacesOptions struct {
	client    *http.Client
	pathStyle bool
}

// WithSpacesClient sends the Spaces requests through client, with the bucket in the path when
// pathStyle (an S3-compatible store without virtual-host names).
func WithSpacesClient(client *http.Client, pathStyle bool) Option {
	return func(o *options) { o.spaces = spacesOptions{client, pathStyle} }
}
