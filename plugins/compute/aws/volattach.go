package aws

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

// volumeDevices are the device names AttachVolume picks from, as EC2 recommends for EBS volumes
// on Linux (/dev/sd[f-p]); a Nitro guest sees NVMe devices whatever the name, so the name only
// has to be free on the instance.
var volumeDevices = func() []string {
	var out []string
	for c := 'f'; c <= 'p'; c++ {
		out = append(out, "/dev/sd"+string(c))
	}
	return out
}()

// AttachVolume implements compute.Volumes. It refuses a volume attached to another instance
// (ErrVolumeInUse) before asking EC2 anything else, picks a device name free on the instance, and
// returns once EC2 reports the attachment attached. A volume already attached (or attaching) to
// instance is waited for, not attached again, so a retry after a crash is safe. Attaching is
// done by one AttachVolume call: two callers racing for one volume get one success and one
// VolumeInUse from EC2, never two attachments.
func (p *Provider) AttachVolume(ctx context.Context, id, instance string) (compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("aws: %w", err)
	}
	for attempt := 0; ; attempt++ {
		v, err := p.volume(ctx, id)
		if err != nil {
			return compute.Volume{}, err
		}
		switch h := holder(v); {
		case h == instance:
			return p.waitAttached(ctx, id, instance)
		case h != "":
			return compute.Volume{}, fmt.Errorf("aws: attaching volume %s to %s: attached to %s: %w", id, instance, h, compute.ErrVolumeInUse)
		case v.State == types.VolumeStateCreating:
			if _, err := p.waitVolume(ctx, id, "available"); err != nil {
				return compute.Volume{}, err
			}
			continue
		}
		device, err := p.freeDevice(ctx, instance)
		if err != nil {
			return compute.Volume{}, err
		}
		_, err = p.c.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(instance), Device: aws.String(device)})
		switch code := errorCode(err); {
		case err == nil:
			return p.waitAttached(ctx, id, instance)
		case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
			return compute.Volume{}, fmt.Errorf("aws: attaching volume %s: instance %s: %w", id, instance, compute.ErrNotFound)
		case code == "InvalidVolume.NotFound":
			return compute.Volume{}, fmt.Errorf("aws: attaching volume %s: %w", id, errVolumeNotFound)
		case code == "InvalidVolume.ZoneMismatch":
			return compute.Volume{}, fmt.Errorf("aws: attaching volume %s (zone %s) to %s: the instance runs in another zone: %w", id, aws.ToString(v.AvailabilityZone), instance, err)
		case code == "IncorrectInstanceState":
			// EC2 attaches to a running or stopped instance only: one just started (a handoff's
			// rollback starts blue, then attaches) is pending for a while. Wait it out; any other
			// state is final.
			if err := p.waitNotPending(ctx, id, instance); err != nil {
				return compute.Volume{}, err
			}
			continue
		case (code == "VolumeInUse" || code == "IncorrectState" || code == "InvalidParameterValue") && attempt < 3:
			// Someone else attached it (the next look says to whom), it was still settling, or
			// the device was taken meanwhile: look again.
			continue
		default:
			return compute.Volume{}, fmt.Errorf("aws: attaching volume %s to %s as %s: %w", id, instance, device, err)
		}
	}
}

// waitNotPending waits, bounded by ctx, until instance is no longer pending, and fails unless it
// is then running or stopped (the states EC2 attaches a volume to).
func (p *Provider) waitNotPending(ctx context.Context, id, instance string) error {
	w := p.poller()
	for {
		in, err := p.describeOne(ctx, instance)
		if notFound(err) {
			return fmt.Errorf("aws: attaching volume %s: instance %s: %w", id, instance, compute.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("aws: attaching volume %s: describing instance %s: %w", id, instance, err)
		}
		state := types.InstanceStateNamePending // no state yet: as good as pending
		if in.State != nil {
			state = in.State.Name
		}
		switch state {
		case types.InstanceStateNameRunning, types.InstanceStateNameStopped:
			return nil
		case types.InstanceStateNamePending:
			if err := w.wait(ctx); err != nil {
				return fmt.Errorf("aws: attaching volume %s: waiting for instance %s to run: %w", id, instance, err)
			}
		default:
			return fmt.Errorf("aws: attaching volume %s: instance %s is %s: want it running or stopped", id, instance, state)
		}
	}
}

// freeDevice is the first name of volumeDevices no volume of instance uses.
func (p *Provider) freeDevice(ctx context.Context, instance string) (string, error) {
	in, err := p.describeOne(ctx, instance)
	if notFound(err) {
		return "", fmt.Errorf("aws: attaching a volume: instance %s: %w", instance, compute.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("aws: attaching a volume: describing instance %s: %w", instance, err)
	}
	used := map[string]bool{aws.ToString(in.RootDeviceName): true}
	for _, m := range in.BlockDeviceMappings {
		used[aws.ToString(m.DeviceName)] = true
	}
	vols, err := p.describeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("attachment.instance-id", instance)}})
	if err != nil {
		return "", fmt.Errorf("aws: listing the volumes of instance %s: %w", instance, err)
	}
	for _, v := range vols {
		for _, a := range v.Attachments {
			used[aws.ToString(a.Device)] = true
		}
	}
	for _, d := range volumeDevices {
		if !used[d] && !used[strings.Replace(d, "/dev/sd", "/dev/xvd", 1)] {
			return d, nil
		}
	}
	return "", fmt.Errorf("aws: instance %s has a volume on every device of %s..%s", instance, volumeDevices[0], volumeDevices[len(volumeDevices)-1])
}

func (p *Provider) waitAttached(ctx context.Context, id, instance string) (compute.Volume, error) {
	w := p.poller()
	for {
		v, err := p.volume(ctx, id)
		if err != nil {
			return compute.Volume{}, err
		}
		h := holder(v)
		if h != instance {
			return compute.Volume{}, fmt.Errorf("aws: volume %s went from attaching to %s to %q on its own (EC2 failed the attachment): %w", id, instance, h, compute.ErrVolumeInUse)
		}
		if slices.ContainsFunc(v.Attachments, func(a types.VolumeAttachment) bool { return a.State == types.VolumeAttachmentStateAttached }) {
			return toVolume(v), nil
		}
		if err := w.wait(ctx); err != nil {
			return compute.Volume{}, fmt.Errorf("aws: waiting for volume %s to attach to %s: %w", id, instance, err)
		}
	}
}

// DetachVolume implements compute.Volumes: DetachVolume (not forced: EC2 lets the guest release
// the device), then polls until the volume is available again. A volume detaching already is
// waited for; one still attaching is waited for and then detached. An unknown volume wraps
// compute.ErrNotFound.
func (p *Provider) DetachVolume(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	w := p.poller()
	for {
		v, err := p.volume(ctx, id)
		if err != nil {
			return err
		}
		if holder(v) == "" && v.State != types.VolumeStateInUse {
			return nil
		}
		for _, a := range v.Attachments {
			if a.State != types.VolumeAttachmentStateAttached {
				continue // attaching: detach once attached; detaching: wait
			}
			_, err := p.c.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(id)})
			switch code := errorCode(err); {
			case err == nil, code == "IncorrectState": // IncorrectState: detaching already, or detached
			case code == "InvalidVolume.NotFound":
				return fmt.Errorf("aws: detaching volume %s: %w", id, errVolumeNotFound)
			default:
				return fmt.Errorf("aws: detaching volume %s from %s: %w", id, aws.ToString(a.InstanceId), err)
			}
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("aws: waiting for volume %s to detach: %w", id, err)
		}
	}
}

// SnapshotVolume implements compute.Volumes with CreateSnapshot, which has no client token: the
// token is a tag, looked up first. It returns as soon as EC2 has the snapshot, pending or
// completed. Two processes snapshotting one token at once both create one; each then keeps the
// oldest of the token and deletes its own if it is not that one, so one remains.
func (p *Provider) SnapshotVolume(ctx context.Context, id, token string, labels map[string]string) (compute.VolumeSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return compute.VolumeSnapshot{}, fmt.Errorf("aws: %w", err)
	}
	if token == "" {
		return compute.VolumeSnapshot{}, fmt.Errorf("aws: snapshot of volume %s: empty token", id)
	}
	if s, ok, err := p.snapshotByToken(ctx, token); err != nil || ok {
		return s, err
	}
	out, err := p.c.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(id),
		Description: aws.String("drover snapshot of " + id),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot,
			Tags: labelTags("", snapshotTokenTag, token, labels)}}})
	switch code := errorCode(err); {
	case code == "InvalidVolume.NotFound":
		return compute.VolumeSnapshot{}, fmt.Errorf("aws: snapshot of volume %s: %w", id, errVolumeNotFound)
	case err != nil:
		return compute.VolumeSnapshot{}, fmt.Errorf("aws: snapshot of volume %s: %w", id, err)
	}
	first, ok, err := p.snapshotByToken(ctx, token)
	if err == nil && ok && first.ID != aws.ToString(out.SnapshotId) {
		if err := p.DeleteVolumeSnapshot(ctx, aws.ToString(out.SnapshotId)); err != nil {
			return compute.VolumeSnapshot{}, err
		}
		return first, nil
	}
	return compute.VolumeSnapshot{ID: aws.ToString(out.SnapshotId), VolumeID: id, SizeGiB: int(aws.ToInt32(out.VolumeSize)),
		Labels: maps.Clone(labels), State: string(out.State), Created: aws.ToTime(out.StartTime)}, nil
}

// VolumeSnapshots implements compute.Volumes: this account's snapshots with drover's snapshot
// token tag and a tag per label.
func (p *Provider) VolumeSnapshots(ctx context.Context, sel compute.Selector) ([]compute.VolumeSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	filters := []types.Filter{filter("tag-key", snapshotTokenTag)}
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		filters = append(filters, filter("tag:"+labelTagPrefix+k, sel[k]))
	}
	snaps, err := p.describeSnapshots(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("aws: listing volume snapshots %v: %w", sel, err)
	}
	var out []compute.VolumeSnapshot
	for _, s := range snaps {
		if c := toSnapshot(s); sel.Matches(c.Labels) && tag(s.Tags, snapshotTokenTag) != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// DeleteVolumeSnapshot implements compute.Volumes with DeleteSnapshot; an unknown snapshot is nil.
func (p *Provider) DeleteVolumeSnapshot(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	_, err := p.c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err != nil && errorCode(err) != "InvalidSnapshot.NotFound" {
		return fmt.Errorf("aws: deleting snapshot %s: %w", id, err)
	}
	return nil
}

// snapshotByToken is the oldest snapshot of token (the one every caller keeps).
func (p *Provider) snapshotByToken(ctx context.Context, token string) (compute.VolumeSnapshot, bool, error) {
	snaps, err := p.describeSnapshots(ctx, []types.Filter{filter("tag:"+snapshotTokenTag, token)})
	if err != nil {
		return compute.VolumeSnapshot{}, false, fmt.Errorf("aws: looking up snapshot token %q: %w", token, err)
	}
	snaps = slices.DeleteFunc(snaps, func(s types.Snapshot) bool { return tag(s.Tags, snapshotTokenTag) != token })
	if len(snaps) == 0 {
		return compute.VolumeSnapshot{}, false, nil
	}
	first := slices.MinFunc(snaps, func(a, b types.Snapshot) int {
		if c := aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime)); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(a.SnapshotId), aws.ToString(b.SnapshotId))
	})
	return toSnapshot(first), true, nil
}

func (p *Provider) describeSnapshots(ctx context.Context, filters []types.Filter) ([]types.Snapshot, error) {
	var out []types.Snapshot
	pages := ec2.NewDescribeSnapshotsPaginator(p.c.ec2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Snapshots...)
	}
	return out, nil
}

// waitSnapshotCompleted polls snapshot id until it is completed; an unknown one wraps
// compute.ErrNotFound, one in error fails.
func (p *Provider) waitSnapshotCompleted(ctx context.Context, id string) (compute.VolumeSnapshot, error) {
	w := p.poller()
	for {
		out, err := p.c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		switch {
		case errorCode(err) == "InvalidSnapshot.NotFound", errorCode(err) == "InvalidSnapshotID.Malformed", err == nil && len(out.Snapshots) == 0:
			return compute.VolumeSnapshot{}, fmt.Errorf("aws: snapshot %s: no such snapshot in %s: %w", id, p.cfg.Region, compute.ErrNotFound)
		case err != nil:
			return compute.VolumeSnapshot{}, fmt.Errorf("aws: describing snapshot %s: %w", id, err)
		case out.Snapshots[0].State == types.SnapshotStateCompleted:
			return toSnapshot(out.Snapshots[0]), nil
		case out.Snapshots[0].State == types.SnapshotStateError:
			return compute.VolumeSnapshot{}, fmt.Errorf("aws: snapshot %s failed: %s", id, aws.ToString(out.Snapshots[0].StateMessage))
		}
		if err := w.wait(ctx); err != nil {
			return compute.VolumeSnapshot{}, fmt.Errorf("aws: waiting for snapshot %s to complete: %w", id, err)
		}
	}
}

func toSnapshot(s types.Snapshot) compute.VolumeSnapshot {
	return compute.VolumeSnapshot{ID: aws.ToString(s.SnapshotId), VolumeID: aws.ToString(s.VolumeId), SizeGiB: int(aws.ToInt32(s.VolumeSize)),
		Labels: labelsOf(s.Tags), State: string(s.State), Created: aws.ToTime(s.StartTime)}
}
