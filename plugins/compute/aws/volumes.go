package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

var _ compute.Volumes = (*Provider)(nil)

// Tags of the volumes and volume snapshots drover makes. Root volumes carry their instance's
// tokenTag, so data volumes have a tag of their own: listing them never shows a root volume.
const (
	volumeTokenTag   = "drover-volume-token"   // a data volume's VolumeSpec.Token
	snapshotTokenTag = "drover-snapshot-token" // a volume snapshot's token
)

// GuestPathPrefix is where a Linux guest finds an EBS volume on a Nitro instance: udev's
// persistent name of an NVMe disk is "nvme-" + model + "_" + serial, and EBS's model is
// "Amazon Elastic Block Store" (spaces made underscores) and its serial the volume ID without its
// dash.
const GuestPathPrefix = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"

// CreateVolume implements compute.Volumes: a gp3 volume in the zone instances launch in (the
// block's zone, or its subnet's), with the labels as tags, the token as a tag and as
// CreateVolume's ClientToken, returned once it is available. It first looks the token up, so a
// retry finds the volume a crashed call made, even after EC2 forgot the client token.
func (p *Provider) CreateVolume(ctx context.Context, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(false); err != nil {
		return compute.Volume{}, err
	}
	return p.createVolume(ctx, spec, "")
}

// RestoreVolume implements compute.Volumes with CreateVolume from the snapshot, idempotent as
// CreateVolume is. A snapshot still pending is waited for (EC2 restores only completed ones here).
func (p *Provider) RestoreVolume(ctx context.Context, snapshot string, spec compute.VolumeSpec) (compute.Volume, error) {
	if err := spec.Validate(true); err != nil {
		return compute.Volume{}, err
	}
	if snapshot == "" {
		return compute.Volume{}, fmt.Errorf("aws: restoring volume %q: empty snapshot ID", spec.Name)
	}
	return p.createVolume(ctx, spec, snapshot)
}

func (p *Provider) createVolume(ctx context.Context, spec compute.VolumeSpec, snapshot string) (compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("aws: %w", err)
	}
	if v, ok, err := p.volumeByToken(ctx, spec.Token); err != nil || ok {
		if ok {
			return p.waitVolume(ctx, v.ID, "available")
		}
		return compute.Volume{}, err
	}
	zone, err := p.volumeZone(ctx)
	if err != nil {
		return compute.Volume{}, err
	}
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone), VolumeType: types.VolumeTypeGp3,
		ClientToken: aws.String(clientToken(spec.Token)),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume,
			Tags: labelTags(spec.Name, volumeTokenTag, spec.Token, spec.Labels)}}}
	if spec.SizeGiB > 0 {
		in.Size = aws.Int32(int32(spec.SizeGiB))
	}
	if snapshot != "" {
		s, err := p.waitSnapshotCompleted(ctx, snapshot)
		if err != nil {
			return compute.Volume{}, err
		}
		if spec.SizeGiB > 0 && spec.SizeGiB < s.SizeGiB {
			return compute.Volume{}, fmt.Errorf("aws: restoring %s into volume %q: size %d GiB is below the snapshot's %d GiB: want at least %d (or 0 for the snapshot's)",
				snapshot, spec.Name, spec.SizeGiB, s.SizeGiB, s.SizeGiB)
		}
		in.SnapshotId = aws.String(snapshot)
	}
	out, err := p.c.ec2.CreateVolume(ctx, in)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("aws: creating volume %q (%d GiB) in %s: %w", spec.Name, spec.SizeGiB, zone, err)
	}
	return p.waitVolume(ctx, aws.ToString(out.VolumeId), "available")
}

// volumeZone is where volumes are made, the zone instances launch in (the subnet's, or the
// block's zone, which Launch then asks for): instances attach only volumes of their own zone.
func (p *Provider) volumeZone(ctx context.Context) (string, error) {
	if p.cfg.SubnetID == "" {
		if p.cfg.Zone == "" {
			return "", errors.New("aws: volumes need a zone: set zone (such as \"" + p.cfg.Region + "a\") or subnet_id in the aws block")
		}
		return p.cfg.Zone, nil
	}
	out, err := p.c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{p.cfg.SubnetID}})
	if err != nil {
		return "", fmt.Errorf("aws: looking up the zone of subnet %s: %w", p.cfg.SubnetID, err)
	}
	if len(out.Subnets) == 0 || aws.ToString(out.Subnets[0].AvailabilityZone) == "" {
		return "", fmt.Errorf("aws: subnet %s has no availability zone in %s", p.cfg.SubnetID, p.cfg.Region)
	}
	return aws.ToString(out.Subnets[0].AvailabilityZone), nil
}

// Volumes implements compute.Volumes: DescribeVolumes with a filter per label, limited to the
// volumes drover made (those with its volume token tag), deleted ones left out.
func (p *Provider) Volumes(ctx context.Context, sel compute.Selector) ([]compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	filters := []types.Filter{filter("tag-key", volumeTokenTag)}
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		filters = append(filters, filter("tag:"+labelTagPrefix+k, sel[k]))
	}
	vols, err := p.describeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("aws: listing volumes %v: %w", sel, err)
	}
	var out []compute.Volume
	for _, v := range vols {
		if live(v) && tag(v.Tags, volumeTokenTag) != "" {
			if c := toVolume(v); sel.Matches(c.Labels) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// DeleteVolume implements compute.Volumes with DeleteVolume, once the volume is attached
// nowhere, and returns when EC2 no longer lists it as live. An unknown volume is nil.
func (p *Provider) DeleteVolume(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	v, err := p.volume(ctx, id)
	switch {
	case errors.Is(err, compute.ErrNotFound):
		return nil
	case err != nil:
		return err
	case !live(v):
		return nil
	case holder(v) != "":
		return fmt.Errorf("aws: deleting volume %s: attached to %s: detach it first: %w", id, holder(v), compute.ErrVolumeInUse)
	}
	if v.State == types.VolumeStateCreating {
		if _, err := p.waitVolume(ctx, id, "available"); err != nil {
			return err
		}
	}
	_, err = p.c.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	switch code := errorCode(err); {
	case code == "InvalidVolume.NotFound":
		return nil
	case code == "VolumeInUse":
		return fmt.Errorf("aws: deleting volume %s: %w (%w)", id, compute.ErrVolumeInUse, err)
	case err != nil:
		return fmt.Errorf("aws: deleting volume %s: %w", id, err)
	}
	w := p.poller()
	for {
		v, err := p.volume(ctx, id)
		if errors.Is(err, compute.ErrNotFound) || err == nil && !live(v) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("aws: waiting for volume %s to be deleted: %w", id, err)
		}
	}
}

// volumeByToken finds the live volume a CreateVolume or RestoreVolume of token made.
func (p *Provider) volumeByToken(ctx context.Context, token string) (compute.Volume, bool, error) {
	vols, err := p.describeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("tag:"+volumeTokenTag, token)}})
	if err != nil {
		return compute.Volume{}, false, fmt.Errorf("aws: looking up volume token %q: %w", token, err)
	}
	for _, v := range vols {
		if live(v) && tag(v.Tags, volumeTokenTag) == token {
			return toVolume(v), true, nil
		}
	}
	return compute.Volume{}, false, nil
}

// volume describes one volume; an unknown one wraps compute.ErrNotFound.
func (p *Provider) volume(ctx context.Context, id string) (types.Volume, error) {
	vols, err := p.describeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	switch code := errorCode(err); {
	case code == "InvalidVolume.NotFound", code == "InvalidVolume.Malformed", err == nil && len(vols) == 0:
		return types.Volume{}, fmt.Errorf("aws: volume %s: %w", id, errVolumeNotFound)
	case err != nil:
		return types.Volume{}, fmt.Errorf("aws: describing volume %s: %w", id, err)
	}
	return vols[0], nil
}

// errVolumeNotFound is compute.ErrNotFound said of a volume.
var errVolumeNotFound = fmt.Errorf("no such volume in this region: %w", compute.ErrNotFound)

func (p *Provider) describeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput) ([]types.Volume, error) {
	var out []types.Volume
	pages := ec2.NewDescribeVolumesPaginator(p.c.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Volumes...)
	}
	return out, nil
}

// waitVolume polls volume id until its state is want ("available" or "in-use").
func (p *Provider) waitVolume(ctx context.Context, id string, want types.VolumeState) (compute.Volume, error) {
	w := p.poller()
	for {
		v, err := p.volume(ctx, id)
		switch {
		case err != nil:
			return compute.Volume{}, err
		case v.State == want:
			return toVolume(v), nil
		case v.State == types.VolumeStateError || !live(v):
			return compute.Volume{}, fmt.Errorf("aws: volume %s is %s, want %s", id, v.State, want)
		}
		if err := w.wait(ctx); err != nil {
			return compute.Volume{}, fmt.Errorf("aws: waiting for volume %s to be %s: %w", id, want, err)
		}
	}
}

// live reports whether v is not on its way out.
func live(v types.Volume) bool {
	return v.State != types.VolumeStateDeleting && v.State != types.VolumeStateDeleted
}

// holder is the instance v is attached to (attaching, attached or detaching), "" for none.
func holder(v types.Volume) string {
	for _, a := range v.Attachments {
		if a.State != types.VolumeAttachmentStateDetached {
			return aws.ToString(a.InstanceId)
		}
	}
	return ""
}

func toVolume(v types.Volume) compute.Volume {
	id := aws.ToString(v.VolumeId)
	c := compute.Volume{ID: id, SizeGiB: int(aws.ToInt32(v.Size)), Labels: labelsOf(v.Tags), AttachedTo: holder(v),
		GuestPath: GuestPathPrefix + strings.Replace(id, "-", "", 1), Created: aws.ToTime(v.CreateTime), Name: tag(v.Tags, "Name")}
	return c
}

// labelTags are the tags of a volume or snapshot: its name, its token and its labels.
func labelTags(name, tokenKey, token string, labels map[string]string) []types.Tag {
	tags := []types.Tag{{Key: aws.String(tokenKey), Value: aws.String(token)}}
	if name != "" {
		tags = append(tags, types.Tag{Key: aws.String("Name"), Value: aws.String(name)})
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		tags = append(tags, types.Tag{Key: aws.String(labelTagPrefix + k), Value: aws.String(labels[k])})
	}
	return tags
}

func labelsOf(tags []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		if k, ok := strings.CutPrefix(aws.ToString(t.Key), labelTagPrefix); ok {
			out[k] = aws.ToString(t.Value)
		}
	}
	return out
}
