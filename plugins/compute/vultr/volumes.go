package vultr

// Volumes: Vultr Block Storage. A block has a label (free text) but no tags, so drover writes the
// spec's name, token and labels into it (blockLabel): "NAME #drover?l.role=db&t=TOKEN", the part
// after " #drover?" a URL query, sorted, which a new process parses back. A block lives in one
// region and attaches to one instance of that region at a time. Vultr has no idempotency token,
// so CreateVolume looks the token up in the labels before creating (which also finds the block of
// a call that crashed between the create and its answer) and again after: when two processes
// raced one token, the oldest block wins and the others are deleted. Block storage snapshots
// (POST /v2/blocks/snapshots, a block created with snapshot_id) carry the same encoding in their
// description. Attach and detach are asynchronous on Vultr: both are polled until
// attached_to_instance says so.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/backoff"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

var _ compute.Volumes = (*Provider)(nil)

// guestPathPrefix and a block's mount_id are where a Vultr guest finds the block: it is a virtio
// disk whose serial is the mount_id, so udev links it as /dev/disk/by-id/virtio-MOUNT_ID (what
// Vultr's CSI driver mounts).
const guestPathPrefix = "/dev/disk/by-id/virtio-"

// labelMarker separates a block's name from drover's query of token and labels.
const labelMarker = " #drover?"

// blockLabel is the label (or snapshot description) of name with token and labels.
func blockLabel(name, token string, labels map[string]string) string {
	q := url.Values{"t": {strings.TrimPrefix(tokenTag(token), tokenTagPrefix)}}
	for k, v := range labels {
		q.Set("l."+k, v)
	}
	return name + labelMarker + q.Encode()
}

// parsedLabel is what a block's label says; ours is false for a block drover did not create.
type parsedLabel struct {
	name, token string
	labels      map[string]string
	ours        bool
}

func parseBlockLabel(label string) parsedLabel {
	i := strings.LastIndex(label, labelMarker)
	if i < 0 {
		return parsedLabel{name: label}
	}
	q, err := url.ParseQuery(label[i+len(labelMarker):])
	if err != nil || q.Get("t") == "" {
		return parsedLabel{name: label}
	}
	p := parsedLabel{name: label[:i], token: q.Get("t"), labels: map[string]string{}, ours: true}
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, "l."); ok && len(v) > 0 {
			p.labels[name] = v[0]
		}
	}
	return p
}

// CreateVolume implements compute.Volumes: a blank block in the provider's region, idempotent by
// spec.Token. Calls of one token are serialized within the process. A create whose answer is lost
// (ctx ended, the process killed) leaves a block labelled with the token, which a retry adopts.
// Two processes racing one token within a second of each other may both create; the second to
// list deletes the loser, which the other may already have returned: its next call on that ID
// finds ErrNotFound, and CreateVolume of the token again returns the winner.
func (p *Provider) CreateVolume(ctx context.Context, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(false); err != nil {
		return compute.Volume{}, err
	}
	return p.createBlock(ctx, spec, "")
}

// RestoreVolume implements compute.Volumes: a block created from a block storage snapshot.
func (p *Provider) RestoreVolume(ctx context.Context, snapshot string, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(true); err != nil {
		return compute.Volume{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: %w", err)
	}
	s, _, err := p.c.BlockStorage.GetSnapshot(ctx, snapshot)
	if vultrapi.Status(err) == 404 {
		return compute.Volume{}, fmt.Errorf("vultr: block storage snapshot %q: %w", snapshot, compute.ErrNotFound)
	}
	if err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: reading block storage snapshot %s: %w", snapshot, vultrapi.CtxErr(ctx, err))
	}
	if spec.SizeGiB == 0 {
		spec.SizeGiB = s.Size
	}
	if spec.SizeGiB < s.Size {
		return compute.Volume{}, fmt.Errorf("vultr: restoring snapshot %s into %d GB: the snapshot is %d GB", snapshot, spec.SizeGiB, s.Size)
	}
	return p.createBlock(ctx, spec, snapshot)
}

func (p *Provider) createBlock(ctx context.Context, spec compute.VolumeSpec, snapshot string) (compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: %w", err)
	}
	unlock, err := p.volumes.Lock(ctx, "token:"+spec.Token)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	token := strings.TrimPrefix(tokenTag(spec.Token), tokenTagPrefix)
	found, err := p.blocksOfToken(ctx, token)
	if err != nil {
		return compute.Volume{}, err
	}
	if len(found) == 0 {
		req := &govultr.BlockStorageCreate{Region: p.cfg.Region, SizeGB: spec.SizeGiB, Label: blockLabel(spec.Name, spec.Token, spec.Labels), SnapshotID: snapshot}
		if _, _, err := p.c.BlockStorage.Create(ctx, req); err != nil {
			return compute.Volume{}, fmt.Errorf("vultr: creating block storage %q (%d GB in %s): %w", spec.Name, spec.SizeGiB, p.cfg.Region, vultrapi.CtxErr(ctx, err))
		}
		if found, err = p.blocksOfToken(ctx, token); err != nil {
			return compute.Volume{}, err
		}
		if len(found) == 0 {
			return compute.Volume{}, fmt.Errorf("vultr: block storage of token %q created but not listed", spec.Token)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if ti, tj := parseTime(found[i].DateCreated), parseTime(found[j].DateCreated); !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return found[i].ID < found[j].ID
	})
	for _, extra := range found[1:] { // two processes raced the token: the oldest block wins
		if extra.AttachedToInstance != "" {
			continue // in use: not ours to delete behind the user's back
		}
		if err := p.c.BlockStorage.Delete(ctx, extra.ID); err != nil && vultrapi.Status(err) != 404 {
			return compute.Volume{}, fmt.Errorf("vultr: deleting %s, a second block storage of one token: %w", extra.ID, vultrapi.CtxErr(ctx, err))
		}
	}
	return volumeOf(found[0]), nil
}

// blocksOfToken lists drover's blocks of the region whose label carries token.
func (p *Provider) blocksOfToken(ctx context.Context, token string) ([]govultr.BlockStorage, error) {
	all, err := p.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []govultr.BlockStorage
	for _, b := range all {
		if l := parseBlockLabel(b.Label); l.ours && l.token == token {
			out = append(out, b)
		}
	}
	return out, nil
}

// listBlocks is every block of the provider's region, following meta.links.next.
func (p *Provider) listBlocks(ctx context.Context) ([]govultr.BlockStorage, error) {
	opts := &govultr.ListOptions{PerPage: p.pageSize}
	var out []govultr.BlockStorage
	for {
		page, meta, _, err := p.c.BlockStorage.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("vultr: listing block storage: %w", vultrapi.CtxErr(ctx, err))
		}
		for _, b := range page {
			if b.Region == p.cfg.Region {
				out = append(out, b)
			}
		}
		if meta == nil || meta.Links == nil || meta.Links.Next == "" {
			return out, nil
		}
		opts.Cursor = meta.Links.Next
	}
}

// Volumes implements compute.Volumes: drover's blocks of the region whose labels match sel.
func (p *Provider) Volumes(ctx context.Context, sel compute.Selector) ([]compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	all, err := p.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []compute.Volume
	for _, b := range all {
		if l := parseBlockLabel(b.Label); l.ours && sel.Matches(l.labels) {
			out = append(out, volumeOf(b))
		}
	}
	return out, nil
}

// AttachVolume implements compute.Volumes: it waits for the block to be active, attaches it live
// and polls until Vultr reports it attached. A block and an instance of different regions are
// refused before any request that changes something.
func (p *Provider) AttachVolume(ctx context.Context, id, instance string) (compute.Volume, error) {
	unlock, err := p.volumes.Lock(ctx, id)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	b, err := p.block(ctx, id)
	if err != nil {
		return compute.Volume{}, err
	}
	in, _, err := p.c.Instance.Get(ctx, instance)
	if vultrapi.Status(err) == 404 {
		return compute.Volume{}, fmt.Errorf("vultr: instance %q: %w", instance, compute.ErrNotFound)
	}
	if err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: reading instance %s: %w", instance, vultrapi.CtxErr(ctx, err))
	}
	switch b.AttachedToInstance {
	case instance:
		return volumeOf(*b), nil
	case "":
	default:
		return compute.Volume{}, fmt.Errorf("vultr: block storage %s is attached to instance %s: %w", id, b.AttachedToInstance, compute.ErrVolumeInUse)
	}
	if in.Region != b.Region {
		return compute.Volume{}, fmt.Errorf("vultr: block storage %s is in %s, instance %s in %s: a block attaches only to an instance of its region", id, b.Region, instance, in.Region)
	}
	if _, err := p.waitBlock(ctx, id, "to be active", func(b *govultr.BlockStorage) bool { return b.Status == "active" }); err != nil {
		return compute.Volume{}, err
	}
	live := true
	if err := p.c.BlockStorage.Attach(ctx, id, &govultr.BlockStorageAttach{InstanceID: instance, Live: &live}); err != nil {
		status, msg := vultrapi.Error(err)
		if status != 400 || !strings.Contains(msg, "already attached") {
			return compute.Volume{}, fmt.Errorf("vultr: attaching block storage %s to instance %s: %w", id, instance, vultrapi.CtxErr(ctx, err))
		}
		// Attached meanwhile, by another process: to this instance (wait for it) or elsewhere.
		cur, rerr := p.block(ctx, id)
		if rerr == nil && cur.AttachedToInstance != instance {
			return compute.Volume{}, fmt.Errorf("vultr: block storage %s: %s: %w", id, msg, compute.ErrVolumeInUse)
		}
	}
	b, err = p.waitBlock(ctx, id, "to be attached to "+instance, func(b *govultr.BlockStorage) bool { return b.AttachedToInstance == instance })
	if err != nil {
		return compute.Volume{}, err
	}
	return volumeOf(*b), nil
}

// DetachVolume implements compute.Volumes: a live detach, polled until Vultr reports the block
// attached nowhere.
func (p *Provider) DetachVolume(ctx context.Context, id string) error {
	unlock, err := p.volumes.Lock(ctx, id)
	if err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	b, err := p.block(ctx, id)
	if err != nil {
		return err
	}
	if b.AttachedToInstance == "" {
		return nil
	}
	live := true
	if err := p.c.BlockStorage.Detach(ctx, id, &govultr.BlockStorageDetach{Live: &live}); err != nil {
		if _, msg := vultrapi.Error(err); !strings.Contains(msg, "not currently attached") {
			return fmt.Errorf("vultr: detaching block storage %s from instance %s: %w", id, b.AttachedToInstance, vultrapi.CtxErr(ctx, err))
		}
	}
	_, err = p.waitBlock(ctx, id, "to be detached", func(b *govultr.BlockStorage) bool { return b.AttachedToInstance == "" })
	return err
}

// waitBlock polls block id until done says so, and returns it then.
func (p *Provider) waitBlock(ctx context.Context, id, what string, done func(*govultr.BlockStorage) bool) (*govultr.BlockStorage, error) {
	wait := min(100*time.Millisecond, p.poll)
	for {
		b, err := p.block(ctx, id)
		if err != nil {
			return nil, err
		}
		if done(b) {
			return b, nil
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("vultr: waiting for block storage %s %s: %w", id, what, err)
		}
		wait = min(2*wait, p.poll)
	}
}

// block reads block id; an unknown one wraps compute.ErrNotFound.
func (p *Provider) block(ctx context.Context, id string) (*govultr.BlockStorage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	b, _, err := p.c.BlockStorage.Get(ctx, id)
	if vultrapi.Status(err) == 404 {
		return nil, fmt.Errorf("vultr: block storage %q: %w", id, compute.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("vultr: reading block storage %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	return b, nil
}

// DeleteVolume implements compute.Volumes; an attached block is refused (ErrVolumeInUse).
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	b, err := p.block(ctx, id)
	if errors.Is(err, compute.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if b.AttachedToInstance != "" {
		return fmt.Errorf("vultr: block storage %s is attached to instance %s: %w", id, b.AttachedToInstance, compute.ErrVolumeInUse)
	}
	err = p.c.BlockStorage.Delete(ctx, id)
	status, msg := vultrapi.Error(err)
	switch {
	case err == nil || status == 404:
		return nil
	case status == 400 && strings.Contains(msg, "attached"): // attached meanwhile
		return fmt.Errorf("vultr: block storage %s: %s: %w", id, msg, compute.ErrVolumeInUse)
	}
	return fmt.Errorf("vultr: deleting block storage %s: %w", id, vultrapi.CtxErr(ctx, err))
}

func volumeOf(b govultr.BlockStorage) compute.Volume {
	l := parseBlockLabel(b.Label)
	return compute.Volume{ID: b.ID, Name: l.name, SizeGiB: b.SizeGB, Labels: l.labels, AttachedTo: b.AttachedToInstance,
		GuestPath: guestPathPrefix + b.MountID, Created: parseTime(b.DateCreated)}
}
