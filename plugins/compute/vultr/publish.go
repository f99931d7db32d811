package vultr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/backoff"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

var _ compute.Publisher = (*Provider)(nil)

// ObjectStore is where Publish puts a raw disk for Vultr to fetch: a bucket of Vultr Object
// Storage (plugins/internal/objstore's Store). Upload is idempotent and resumable by key, Delete
// removes the object and any unfinished upload of it.
type ObjectStore interface {
	Upload(ctx context.Context, key, path string, progress func(sent, total int64)) error
	Presign(ctx context.Context, key string, ttl time.Duration) (string, error)
	Delete(ctx context.Context, key string) error
}

// presignTTL is how long Vultr may take to start fetching the disk.
const presignTTL = 6 * time.Hour

// Publish implements compute.Publisher: Vultr makes snapshots from a URL of a raw disk (not
// compressed: Vultr documents RAW only), so Publish uploads the disk to the object store,
// hands Vultr a presigned URL (POST /v2/snapshots/create-from-url, uefi true: drover's disks
// boot both ways), waits for the snapshot to complete, and deletes the object. The snapshot's
// description is "drover-image " and the identity, which is how it is found again: Vultr
// snapshots belong to the account, not to a region, so the copy's Region is "".
//
// Idempotent by identity: a complete snapshot of the identity is returned at once (its object
// deleted if a killed Publish left it), a pending one is waited for. An interrupted Publish
// leaves an unfinished upload, which the next one resumes, or a pending snapshot, which the next
// one waits for. When Vultr drops the snapshot (it could not fetch or read the disk), the object
// is deleted and the error says so. Concurrent Publishes of one identity in this process share
// one upload; across processes, two snapshots of one identity can be made, and the newer one is
// deleted by whichever sees both.
func (p *Provider) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	if err := src.Validate(); err != nil {
		return compute.PublishedImage{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("vultr: %w", err)
	}
	if src.Arch != "amd64" {
		return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: architecture %s: Vultr cloud compute runs amd64 only", src.Identity, src.Arch)
	}
	if p.store == nil {
		return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: no object storage configured (the block's bucket)", src.Identity)
	}
	if st, err := os.Stat(src.Path); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: %w", src.Identity, err)
	} else if st.Size() != src.Size {
		return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: %s holds %d bytes, want %d", src.Identity, src.Path, st.Size(), src.Size)
	}
	if progress == nil {
		progress = func(compute.PublishProgress) {}
	}
	unlock, err := p.publishing.Lock(ctx, src.Identity)
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	key := objectKey(src.Identity)
	snaps, err := p.snapshotsOf(ctx, src.Identity)
	if err != nil {
		return compute.PublishedImage{}, err
	}
	if len(snaps) == 0 {
		err := p.store.Upload(ctx, key, src.Path, func(sent, total int64) {
			progress(compute.PublishProgress{Phase: compute.PhaseUpload, Done: sent, Total: total})
		})
		if err != nil {
			return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: uploading: %w", src.Identity, vultrapi.CtxErr(ctx, err))
		}
		url, err := p.store.Presign(ctx, key, presignTTL)
		if err != nil {
			return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: %w", src.Identity, err)
		}
		progress(compute.PublishProgress{Phase: compute.PhaseImport})
		_, _, err = p.c.Snapshot.CreateFromURL(ctx, &govultr.SnapshotURLReq{URL: url, Description: description(src.Identity), UEFI: govultr.BoolToBoolPtr(true)})
		if err != nil {
			return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: creating a snapshot from the uploaded disk: %w", src.Identity, vultrapi.CtxErr(ctx, err))
		}
		if snaps, err = p.snapshotsOf(ctx, src.Identity); err != nil {
			return compute.PublishedImage{}, err
		}
		if len(snaps) == 0 { // Vultr dropped it already
			return compute.PublishedImage{}, p.failed(ctx, src.Identity, key)
		}
	}
	snap, err := p.oldestSnapshot(ctx, snaps)
	if err != nil {
		return compute.PublishedImage{}, err
	}
	if snap.Status != "complete" {
		progress(compute.PublishProgress{Phase: compute.PhaseImport})
		if snap, err = p.waitSnapshot(ctx, snap.ID); err != nil {
			return compute.PublishedImage{}, err
		}
		if snap == nil {
			return compute.PublishedImage{}, p.failed(ctx, src.Identity, key)
		}
	}
	if err := p.store.Delete(ctx, key); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("vultr: publish %s: snapshot %s is complete, deleting its uploaded disk: %w", src.Identity, snap.ID, vultrapi.CtxErr(ctx, err))
	}
	return published(src.Identity, *snap), nil
}

// failed deletes the object of a snapshot Vultr dropped and says so.
func (p *Provider) failed(ctx context.Context, identity, key string) error {
	err := fmt.Errorf("vultr: publish %s: Vultr dropped the snapshot made from the uploaded disk: it could not fetch or read it (a raw disk with a partition table, at most 150 GB, is what it takes)", identity)
	if derr := p.store.Delete(ctx, key); derr != nil {
		return fmt.Errorf("%w; deleting the uploaded disk: %v", err, derr)
	}
	return err
}

// waitSnapshot polls snapshot id until it completes; nil when Vultr dropped it.
func (p *Provider) waitSnapshot(ctx context.Context, id string) (*govultr.Snapshot, error) {
	wait := min(100*time.Millisecond, p.poll)
	for {
		s, _, err := p.c.Snapshot.Get(ctx, id)
		if vultrapi.Status(err) == 404 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("vultr: waiting for snapshot %s: %w", id, vultrapi.CtxErr(ctx, err))
		}
		if s.Status == "complete" {
			return s, nil
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("vultr: waiting for snapshot %s: %w", id, err)
		}
		wait = min(2*wait, p.poll)
	}
}

// oldestSnapshot deletes all but the oldest of the snapshots of one identity (two processes
// published it at once) and returns the oldest.
func (p *Provider) oldestSnapshot(ctx context.Context, snaps []govultr.Snapshot) (*govultr.Snapshot, error) {
	sort.Slice(snaps, func(i, j int) bool {
		if a, b := parseTime(snaps[i].DateCreated), parseTime(snaps[j].DateCreated); !a.Equal(b) {
			return a.Before(b)
		}
		return snaps[i].ID < snaps[j].ID
	})
	for _, extra := range snaps[1:] {
		if err := p.c.Snapshot.Delete(ctx, extra.ID); err != nil && vultrapi.Status(err) != 404 {
			return nil, fmt.Errorf("vultr: deleting snapshot %s, a second copy of one image: %w", extra.ID, vultrapi.CtxErr(ctx, err))
		}
	}
	return &snaps[0], nil
}

// Published implements compute.Publisher: the complete snapshot described with identity.
func (p *Provider) Published(ctx context.Context, identity string) (compute.PublishedImage, bool, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, false, fmt.Errorf("vultr: %w", err)
	}
	snaps, err := p.snapshotsOf(ctx, identity)
	if err != nil {
		return compute.PublishedImage{}, false, err
	}
	var done []govultr.Snapshot
	for _, s := range snaps {
		if s.Status == "complete" {
			done = append(done, s)
		}
	}
	if len(done) == 0 {
		return compute.PublishedImage{}, false, nil
	}
	sort.Slice(done, func(i, j int) bool { return parseTime(done[i].DateCreated).Before(parseTime(done[j].DateCreated)) })
	return published(identity, done[0]), true, nil
}

// Unpublish implements compute.Publisher: it deletes the snapshot ref names, every other snapshot
// of its identity (a pending one an interrupted Publish left) and the uploaded disk.
func (p *Provider) Unpublish(ctx context.Context, ref compute.PublishedImage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	if ref.Region != "" {
		return fmt.Errorf("vultr: unpublish %s: region %q: Vultr snapshots belong to the account, not a region", ref.ID, ref.Region)
	}
	var errs []error
	if ref.ID != "" {
		if err := p.c.Snapshot.Delete(ctx, ref.ID); err != nil && vultrapi.Status(err) != 404 {
			errs = append(errs, fmt.Errorf("deleting snapshot %s: %w", ref.ID, vultrapi.CtxErr(ctx, err)))
		}
	}
	if ref.Identity != "" {
		snaps, err := p.snapshotsOf(ctx, ref.Identity)
		if err != nil {
			return err
		}
		for _, s := range snaps {
			if err := p.c.Snapshot.Delete(ctx, s.ID); err != nil && vultrapi.Status(err) != 404 {
				errs = append(errs, fmt.Errorf("deleting snapshot %s: %w", s.ID, vultrapi.CtxErr(ctx, err)))
			}
		}
		if p.store != nil {
			if err := p.store.Delete(ctx, objectKey(ref.Identity)); err != nil {
				errs = append(errs, fmt.Errorf("deleting the uploaded disk: %w", vultrapi.CtxErr(ctx, err)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vultr: unpublish %s (%s): %w", ref.ID, ref.Identity, err)
	}
	return nil
}

// snapshotsOf lists the snapshots described with identity, any status.
func (p *Provider) snapshotsOf(ctx context.Context, identity string) ([]govultr.Snapshot, error) {
	desc := description(identity)
	opts := &govultr.ListOptions{PerPage: p.pageSize, Description: desc}
	var out []govultr.Snapshot
	for {
		page, meta, _, err := p.c.Snapshot.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("vultr: looking up the snapshots of %s: %w", identity, vultrapi.CtxErr(ctx, err))
		}
		for _, s := range page {
			if s.Description == desc { // the filter is Vultr's; checking again keeps another image's out
				out = append(out, s)
			}
		}
		if meta == nil || meta.Links == nil || meta.Links.Next == "" {
			return out, nil
		}
		opts.Cursor = meta.Links.Next
	}
}

func published(identity string, s govultr.Snapshot) compute.PublishedImage {
	return compute.PublishedImage{Identity: identity, ID: s.ID, Created: parseTime(s.DateCreated)}
}

// description is the snapshot description of an image identity.
func description(identity string) string { return "drover-image " + identity }

// objectKey is where an identity's raw disk is uploaded.
func objectKey(identity string) string { return "drover-images/" + identityHex(identity) + ".raw" }

// identityHex is an image identity's hex digest ("sha256:HEX" -> "HEX"); other identities are
// hashed, so the key stays short and valid.
func identityHex(identity string) string {
	if h, ok := strings.CutPrefix(identity, "sha256:"); ok && len(h) == 64 {
		if _, err := hex.DecodeString(h); err == nil {
			return strings.ToLower(h)
		}
	}
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}
