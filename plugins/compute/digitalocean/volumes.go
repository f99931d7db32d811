package digitalocean

// Volumes: DigitalOcean block storage. A volume's name is unique in a region, so drover names it
// after the CreateVolume token's digest (drover-v-HEX), which makes a create idempotent also across
// processes and crashes; the spec's name is the volume's description, its labels are tags (as a
// droplet's). A snapshot is named after its token the same way, and found again among the
// volume's snapshots. Attach and detach are volume actions, waited for.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/doapi"
)

var _ compute.Volumes = (*Provider)(nil)

// guestPathPrefix is where a droplet finds a volume by its name (DigitalOcean's udev rule).
const guestPathPrefix = "/dev/disk/by-id/scsi-0DO_Volume_"

func volumeName(token string) string { return "drover-v-" + digest(token)[:24] }

func labelTags(labels map[string]string) ([]string, error) {
	tags, err := dropletTags("", labels, nil, nil)
	if err != nil {
		return nil, err
	}
	return append([]string{markerTag}, tags[2:]...), nil // no token tag: the name is the token
}

// CreateVolume implements compute.Volumes.
func (p *Provider) CreateVolume(ctx context.Context, spec compute.VolumeSpec) (compute.Volume, error) {
	return p.createVolume(ctx, spec, "")
}

// RestoreVolume implements compute.Volumes: a new volume from snapshot, idempotent by spec.Token.
func (p *Provider) RestoreVolume(ctx context.Context, snapshot string, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(true); err != nil {
		return compute.Volume{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	s, _, err := doapi.Do(ctx, p.c, "reading snapshot "+snapshot, func(ctx context.Context) (*godo.Snapshot, *godo.Response, error) {
		return p.c.Snapshots.Get(ctx, snapshot)
	})
	if doapi.NotFound(err) {
		return compute.Volume{}, fmt.Errorf("digitalocean: snapshot %q: %w", snapshot, compute.ErrNotFound)
	}
	if err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	if spec.SizeGiB == 0 {
		spec.SizeGiB = s.MinDiskSize
	}
	if spec.SizeGiB < s.MinDiskSize {
		return compute.Volume{}, fmt.Errorf("digitalocean: restoring snapshot %s into %d GiB: the snapshot is %d GiB", snapshot, spec.SizeGiB, s.MinDiskSize)
	}
	return p.createVolume(ctx, spec, snapshot)
}

func (p *Provider) createVolume(ctx context.Context, spec compute.VolumeSpec, snapshot string) (compute.Volume, error) {
	if err := spec.Validate(snapshot != ""); err != nil {
		return compute.Volume{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	tags, err := labelTags(spec.Labels)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: volume %q: %w", spec.Name, err)
	}
	name := volumeName(spec.Token)
	for attempt := 0; ; attempt++ {
		if v, ok, err := p.volumeByName(ctx, name); err != nil || ok {
			return v, err
		}
		req := &godo.VolumeCreateRequest{Region: p.cfg.Region, Name: name, Description: spec.Name, SizeGigaBytes: int64(spec.SizeGiB),
			SnapshotID: snapshot, Tags: tags}
		v, _, err := doapi.Do(ctx, p.c, "creating volume "+name, func(ctx context.Context) (*godo.Volume, *godo.Response, error) {
			return p.c.Storage.CreateVolume(ctx, req)
		})
		if doapi.Status(err) == http.StatusConflict && attempt == 0 {
			continue // made by a concurrent or earlier call: the name finds it
		}
		if err != nil {
			return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
		}
		return volumeOf(*v), nil
	}
}

func (p *Provider) volumeByName(ctx context.Context, name string) (compute.Volume, bool, error) {
	vs, _, err := doapi.Do(ctx, p.c, "looking up volume "+name, func(ctx context.Context) ([]godo.Volume, *godo.Response, error) {
		return p.c.Storage.ListVolumes(ctx, &godo.ListVolumeParams{Region: p.cfg.Region, Name: name})
	})
	if err != nil {
		return compute.Volume{}, false, fmt.Errorf("digitalocean: %w", err)
	}
	for _, v := range vs {
		if v.Name == name {
			return volumeOf(v), true, nil
		}
	}
	return compute.Volume{}, false, nil
}

// Volumes implements compute.Volumes: drover's volumes of the region whose labels match sel.
func (p *Provider) Volumes(ctx context.Context, sel compute.Selector) ([]compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	all, err := doapi.All(ctx, p.c, "listing volumes", p.perPage, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Volume, *godo.Response, error) {
		return p.c.Storage.ListVolumes(ctx, &godo.ListVolumeParams{Region: p.cfg.Region, ListOptions: opt})
	})
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	var out []compute.Volume
	for _, v := range all {
		if cv := volumeOf(v); isOurs(v.Tags) && sel.Matches(cv.Labels) {
			out = append(out, cv)
		}
	}
	return out, nil
}

func isOurs(tags []string) bool {
	for _, t := range tags {
		if t == markerTag {
			return true
		}
	}
	return false
}

// AttachVolume implements compute.Volumes with the attach action.
func (p *Provider) AttachVolume(ctx context.Context, id, instance string) (compute.Volume, error) {
	unlock, err := p.volumeLocks.Lock(ctx, id)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	defer unlock()
	v, err := p.volume(ctx, id)
	if err != nil {
		return compute.Volume{}, err
	}
	n, err := strconv.Atoi(instance)
	if err != nil || n < 1 {
		return compute.Volume{}, fmt.Errorf("digitalocean: droplet %q: %w", instance, compute.ErrNotFound)
	}
	if _, err := p.get(ctx, n); doapi.NotFound(err) {
		return compute.Volume{}, fmt.Errorf("digitalocean: droplet %q: %w", instance, compute.ErrNotFound)
	} else if err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	switch v.AttachedTo {
	case instance:
		return v, nil
	case "":
	default:
		return compute.Volume{}, fmt.Errorf("digitalocean: volume %s is attached to droplet %s: %w", id, v.AttachedTo, compute.ErrVolumeInUse)
	}
	a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("attaching volume %s to droplet %d", id, n), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
		return p.c.StorageActions.Attach(ctx, id, n)
	})
	switch doapi.Status(err) {
	case 0:
	case http.StatusNotFound:
		return compute.Volume{}, fmt.Errorf("digitalocean: attaching volume %s to droplet %s: %w", id, instance, compute.ErrNotFound)
	case http.StatusUnprocessableEntity: // attached elsewhere meanwhile (another process)
		if cur, verr := p.volume(ctx, id); verr == nil && cur.AttachedTo != "" && cur.AttachedTo != instance {
			return compute.Volume{}, fmt.Errorf("digitalocean: volume %s is attached to droplet %s: %w", id, cur.AttachedTo, compute.ErrVolumeInUse)
		}
		fallthrough
	default:
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	if err := p.waitVolumeAction(ctx, id, a.ID); err != nil {
		return compute.Volume{}, err
	}
	return p.volume(ctx, id)
}

// DetachVolume implements compute.Volumes with the detach action.
func (p *Provider) DetachVolume(ctx context.Context, id string) error {
	unlock, err := p.volumeLocks.Lock(ctx, id)
	if err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	defer unlock()
	v, err := p.volume(ctx, id)
	if err != nil {
		return err
	}
	if v.AttachedTo == "" {
		return nil
	}
	n, _ := strconv.Atoi(v.AttachedTo)
	a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("detaching volume %s from droplet %d", id, n), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
		return p.c.StorageActions.DetachByDropletID(ctx, id, n)
	})
	if err != nil {
		if cur, verr := p.volume(ctx, id); verr == nil && cur.AttachedTo == "" {
			return nil // detached meanwhile
		}
		return fmt.Errorf("digitalocean: %w", err)
	}
	return p.waitVolumeAction(ctx, id, a.ID)
}

func (p *Provider) waitVolumeAction(ctx context.Context, volume string, id int) error {
	w := p.poller()
	for {
		a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading action %d of volume %s", id, volume), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
			return p.c.StorageActions.Get(ctx, volume, id)
		})
		if err != nil {
			return fmt.Errorf("digitalocean: %w", err)
		}
		switch a.Status {
		case godo.ActionCompleted:
			return nil
		case "errored":
			return fmt.Errorf("digitalocean: the %s action (%d) of volume %s errored", a.Type, id, volume)
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("digitalocean: waiting for the %s action of volume %s: %w", a.Type, volume, err)
		}
	}
}

// volume reads volume id; an unknown one wraps compute.ErrNotFound.
func (p *Provider) volume(ctx context.Context, id string) (compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	v, _, err := doapi.Do(ctx, p.c, "reading volume "+id, func(ctx context.Context) (*godo.Volume, *godo.Response, error) {
		return p.c.Storage.GetVolume(ctx, id)
	})
	if doapi.NotFound(err) {
		return compute.Volume{}, fmt.Errorf("digitalocean: volume %q: %w", id, compute.ErrNotFound)
	}
	if err != nil {
		return compute.Volume{}, fmt.Errorf("digitalocean: %w", err)
	}
	return volumeOf(*v), nil
}

// SnapshotVolume implements compute.Volumes, idempotent by token (the snapshot's name).
func (p *Provider) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	if token == "" {
		return compute.VolumeSnapshot{}, errors.New("digitalocean: snapshot: empty token")
	}
	if _, err := p.volume(ctx, id); err != nil {
		return compute.VolumeSnapshot{}, err
	}
	tags, err := labelTags(labels)
	if err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("digitalocean: snapshot of volume %s: %w", id, err)
	}
	name := volumeName(token)
	existing, err := doapi.All(ctx, p.c, "listing the snapshots of volume "+id, p.perPage, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Snapshot, *godo.Response, error) {
		return p.c.Storage.ListSnapshots(ctx, id, opt)
	})
	if err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("digitalocean: %w", err)
	}
	for _, s := range existing {
		if s.Name == name {
			return snapshotOf(s), nil
		}
	}
	s, _, err := doapi.Do(ctx, p.c, "snapshotting volume "+id, func(ctx context.Context) (*godo.Snapshot, *godo.Response, error) {
		return p.c.Storage.CreateSnapshot(ctx, &godo.SnapshotCreateRequest{VolumeID: id, Name: name, Tags: tags})
	})
	if err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("digitalocean: %w", err)
	}
	return snapshotOf(*s), nil
}

// VolumeSnapshots implements compute.Volumes: drover's volume snapshots whose labels match sel.
func (p *Provider) VolumeSnapshots(ctx context.Context, sel compute.Selector) ([]compute.VolumeSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	all, err := doapi.All(ctx, p.c, "listing volume snapshots", p.perPage, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Snapshot, *godo.Response, error) {
		return p.c.Snapshots.ListVolume(ctx, opt)
	})
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	var out []compute.VolumeSnapshot
	for _, s := range all {
		if cs := snapshotOf(s); isOurs(s.Tags) && sel.Matches(cs.Labels) {
			out = append(out, cs)
		}
	}
	return out, nil
}

// DeleteVolume implements compute.Volumes; an attached volume is refused (ErrVolumeInUse).
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	v, err := p.volume(ctx, id)
	if errors.Is(err, compute.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if v.AttachedTo != "" {
		return fmt.Errorf("digitalocean: volume %s is attached to droplet %s: %w", id, v.AttachedTo, compute.ErrVolumeInUse)
	}
	_, _, err = doapi.Do(ctx, p.c, "deleting volume "+id, func(ctx context.Context) (struct{}, *godo.Response, error) {
		res, err := p.c.Storage.DeleteVolume(ctx, id)
		return struct{}{}, res, err
	})
	switch {
	case err == nil || doapi.NotFound(err):
		return nil
	case doapi.Status(err) == http.StatusConflict: // attached meanwhile
		return fmt.Errorf("digitalocean: volume %s: %w", id, compute.ErrVolumeInUse)
	}
	return fmt.Errorf("digitalocean: %w", err)
}

// DeleteVolumeSnapshot implements compute.Volumes.
func (p *Provider) DeleteVolumeSnapshot(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	_, _, err := doapi.Do(ctx, p.c, "deleting snapshot "+id, func(ctx context.Context) (struct{}, *godo.Response, error) {
		res, err := p.c.Snapshots.Delete(ctx, id)
		return struct{}{}, res, err
	})
	if err != nil && !doapi.NotFound(err) {
		return fmt.Errorf("digitalocean: %w", err)
	}
	return nil
}

func volumeOf(v godo.Volume) compute.Volume {
	labels, _, _ := fromTags(v.Tags)
	out := compute.Volume{ID: v.ID, Name: v.Description, SizeGiB: int(v.SizeGigaBytes), Labels: labels,
		GuestPath: guestPathPrefix + v.Name, Created: v.CreatedAt}
	if len(v.DropletIDs) > 0 {
		out.AttachedTo = strconv.Itoa(v.DropletIDs[0])
	}
	return out
}

func snapshotOf(s godo.Snapshot) compute.VolumeSnapshot {
	labels, _, _ := fromTags(s.Tags)
	out := compute.VolumeSnapshot{ID: s.ID, VolumeID: s.ResourceID, SizeGiB: s.MinDiskSize, Labels: labels, State: "completed"}
	if t, err := time.Parse(time.RFC3339, s.Created); err == nil {
		out.Created = t
	}
	return out
}
