package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

// register makes the AMI of a completed snapshot and waits until it is available. When another
// publish of the identity registered first (EC2 refuses the name twice), its AMI is adopted, and
// snap is deleted unless that AMI boots from it.
func (p *Provider) register(ctx context.Context, src compute.PublishSource, snap string) (compute.PublishedImage, error) {
	arch := types.ArchitectureValuesX8664
	if src.Arch == "arm64" {
		arch = types.ArchitectureValuesArm64
	}
	name := imageName(src.Role, src.Identity)
	_, err := p.c.ec2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               aws.String(name),
		Description:        aws.String("drover image of role " + src.Role + ", " + src.Identity),
		Architecture:       arch,
		RootDeviceName:     aws.String(rootDeviceName),
		VirtualizationType: aws.String("hvm"),
		EnaSupport:         aws.Bool(true),
		BootMode:           types.BootModeValuesUefiPreferred,
		ImdsSupport:        types.ImdsSupportValuesV20,
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String(rootDeviceName),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeType: types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)},
		}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{
			{Key: aws.String(identityTag), Value: aws.String(src.Identity)},
			{Key: aws.String(roleTag), Value: aws.String(src.Role)},
			{Key: aws.String("Name"), Value: aws.String(name)},
		}}},
	})
	if err != nil && errorCode(err) != "InvalidAMIName.Duplicate" {
		return compute.PublishedImage{}, fmt.Errorf("registering an AMI of snapshot %s: %w", snap, err)
	}
	w := p.poller()
	for {
		imgs, err := p.images(ctx, filter("name", name))
		if err != nil {
			return compute.PublishedImage{}, fmt.Errorf("waiting for AMI %s: %w", name, err)
		}
		for _, img := range imgs {
			switch img.State {
			case types.ImageStateAvailable:
				if !slices.Contains(imageSnapshots(img), snap) {
					if err := p.deleteSnapshot(ctx, snap); err != nil {
						return compute.PublishedImage{}, err
					}
				}
				return p.published(img), nil
			case types.ImageStatePending:
			default:
				return compute.PublishedImage{}, fmt.Errorf("AMI %s (%s) is %s: %s", aws.ToString(img.ImageId), name, img.State, stateReasonOf(img.StateReason))
			}
		}
		if err := w.wait(ctx); err != nil {
			return compute.PublishedImage{}, fmt.Errorf("waiting for AMI %s to be available: %w", name, err)
		}
	}
}

// Published implements compute.Publisher: the available AMI of this account tagged with identity.
func (p *Provider) Published(ctx context.Context, identity string) (compute.PublishedImage, bool, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, false, fmt.Errorf("aws: %w", err)
	}
	imgs, err := p.images(ctx, filter("tag:"+identityTag, identity), filter("state", "available"))
	if err != nil {
		return compute.PublishedImage{}, false, fmt.Errorf("aws: looking up the AMI of %s: %w", identity, err)
	}
	if len(imgs) == 0 {
		return compute.PublishedImage{}, false, nil
	}
	return p.published(imgs[0]), true, nil
}

// Unpublish implements compute.Publisher: DeregisterImage of ref.ID (when it carries
// ref.Identity), then DeleteSnapshot of its snapshots and of every other snapshot tagged with the
// identity (an interrupted publish's). Gone ones are not an error.
func (p *Provider) Unpublish(ctx context.Context, ref compute.PublishedImage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	if ref.Region != "" && ref.Region != p.cfg.Region {
		return fmt.Errorf("aws: unpublish %s: the AMI is in %s, this block's region is %s", ref.ID, ref.Region, p.cfg.Region)
	}
	if ref.Identity == "" {
		return fmt.Errorf("aws: unpublish %s: no image identity", ref.ID)
	}
	var snaps []string
	if ref.ID != "" {
		imgs, err := p.images(ctx, filter("image-id", ref.ID))
		if err != nil {
			return fmt.Errorf("aws: unpublish %s: %w", ref.ID, err)
		}
		for _, img := range imgs {
			if tag(img.Tags, identityTag) != ref.Identity {
				return fmt.Errorf("aws: unpublish %s: the AMI is not tagged with image %s: not deleting it", ref.ID, ref.Identity)
			}
			snaps = append(snaps, imageSnapshots(img)...)
			if _, err := p.c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId}); err != nil && !imageGone(err) {
				return fmt.Errorf("aws: deregistering %s: %w", ref.ID, err)
			}
		}
	}
	tagged, err := p.snapshotsOf(ctx, ref.Identity)
	if err != nil {
		return fmt.Errorf("aws: unpublish %s: %w", ref.ID, err)
	}
	var errs []error
	for _, id := range append(snaps, tagged...) {
		errs = append(errs, p.deleteSnapshot(ctx, id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws: unpublish %s: %w", ref.ID, err)
	}
	return nil
}

// images lists this account's AMIs matching filters.
func (p *Provider) images(ctx context.Context, filters ...types.Filter) ([]types.Image, error) {
	var out []types.Image
	pages := ec2.NewDescribeImagesPaginator(p.c.ec2, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Images...)
	}
	return out, nil
}

// snapshotsOf lists the IDs of this account's snapshots tagged with identity, in any state.
func (p *Provider) snapshotsOf(ctx context.Context, identity string) ([]string, error) {
	var ids []string
	pages := ec2.NewDescribeSnapshotsPaginator(p.c.ec2, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []types.Filter{filter("tag:"+identityTag, identity)},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Snapshots {
			ids = append(ids, aws.ToString(s.SnapshotId))
		}
	}
	return ids, nil
}

func (p *Provider) published(img types.Image) compute.PublishedImage {
	pub := compute.PublishedImage{Identity: tag(img.Tags, identityTag), ID: aws.ToString(img.ImageId), Region: p.cfg.Region}
	if img.CreationDate != nil {
		pub.Created, _ = parseTime(*img.CreationDate)
	}
	return pub
}

func imageSnapshots(img types.Image) []string {
	var ids []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			ids = append(ids, *m.Ebs.SnapshotId)
		}
	}
	return ids
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func stateReasonOf(r *types.StateReason) string {
	if r == nil {
		return "EC2 gave no reason"
	}
	return fmt.Sprintf("%s (%s)", aws.ToString(r.Message), aws.ToString(r.Code))
}
