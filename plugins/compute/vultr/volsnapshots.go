package vultr

// Block storage snapshots (Vultr API /v2/blocks/snapshots): a snapshot has only a description,
// which carries drover's token and labels as a block's label does (blockLabel).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

// SnapshotVolume implements compute.Volumes, idempotent by token: the block's snapshots are
// looked up by the token in their description before one is created. Two processes racing one
// token may both create one; VolumeSnapshots then lists both (each is deletable).
func (p *Provider) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	if token == "" {
		return compute.VolumeSnapshot{}, errors.New("vultr: snapshot of block storage: empty token")
	}
	if _, err := p.block(ctx, id); err != nil {
		return compute.VolumeSnapshot{}, err
	}
	unlock, err := p.volumes.Lock(ctx, "snapshot:"+token)
	if err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	all, err := p.listBlockSnapshots(ctx)
	if err != nil {
		return compute.VolumeSnapshot{}, err
	}
	want := strings.TrimPrefix(tokenTag(token), tokenTagPrefix)
	for _, s := range all {
		if l := parseBlockLabel(s.Description); l.ours && l.token == want && s.BlockID == id {
			return snapshotOf(s), nil
		}
	}
	s, _, err := p.c.BlockStorage.CreateSnapshot(ctx, &govultr.BlockStorageSnapshotReq{BlockID: id, Description: blockLabel("", token, labels)})
	if err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("vultr: snapshotting block storage %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	return snapshotOf(*s), nil
}

// listBlockSnapshots is every block storage snapshot of the account, following meta.links.next.
func (p *Provider) listBlockSnapshots(ctx context.Context) ([]govultr.BlockStorageSnapshot, error) {
	opts := &govultr.ListOptions{PerPage: p.pageSize}
	var out []govultr.BlockStorageSnapshot
	for {
		page, meta, _, err := p.c.BlockStorage.ListSnapshots(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("vultr: listing block storage snapshots: %w", vultrapi.CtxErr(ctx, err))
		}
		out = append(out, page...)
		if meta == nil || meta.Links == nil || meta.Links.Next == "" {
			return out, nil
		}
		opts.Cursor = meta.Links.Next
	}
}

// VolumeSnapshots implements compute.Volumes: drover's block storage snapshots whose labels
// match sel.
func (p *Provider) VolumeSnapshots(ctx context.Context, sel compute.Selector) ([]compute.VolumeSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	all, err := p.listBlockSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []compute.VolumeSnapshot
	for _, s := range all {
		if l := parseBlockLabel(s.Description); l.ours && sel.Matches(l.labels) {
			out = append(out, snapshotOf(s))
		}
	}
	return out, nil
}

// DeleteVolumeSnapshot implements compute.Volumes; nil when the snapshot is gone.
func (p *Provider) DeleteVolumeSnapshot(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	if err := p.c.BlockStorage.DeleteSnapshot(ctx, id); err != nil && vultrapi.Status(err) != 404 {
		return fmt.Errorf("vultr: deleting block storage snapshot %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	return nil
}

func snapshotOf(s govultr.BlockStorageSnapshot) compute.VolumeSnapshot {
	state := "pending"
	if strings.EqualFold(s.State, "complete") {
		state = "completed"
	}
	return compute.VolumeSnapshot{ID: s.ID, VolumeID: s.BlockID, SizeGiB: s.Size, Labels: parseBlockLabel(s.Description).labels,
		State: state, Created: parseTime(s.DateCreated)}
}
