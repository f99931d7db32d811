package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

// snapshotTimeout is StartSnapshot's Timeout in minutes: EBS cancels (state error) a snapshot that
// gets no block for that long, or is not completed that long after its last block, which is what
// becomes of the snapshot of a killed publish nobody resumes.
const snapshotTimeout = 60

// sealedWait bounds the wait for a snapshot that refuses blocks to complete (see snapshot).
const sealedWait = 10 * time.Minute

// rootDeviceName is the root device of the AMIs drover registers.
const rootDeviceName = "/dev/xvda"

// Publish implements compute.Publisher: the raw disk becomes an EBS snapshot through the EBS
// direct APIs, and the snapshot an AMI (RegisterImage: the architecture, /dev/xvda on gp3, ENA,
// boot mode uefi-preferred, IMDSv2 only). Both carry the identity as the tag drover-identity.
//
//   - Idempotent: an available AMI tagged with the identity is returned at once, nothing sent.
//   - Only the disk's non-zero 512 KiB blocks are sent (an unwritten EBS block reads as zeros),
//     each with its SHA-256, in parallel; CompleteSnapshot carries their count and the LINEAR
//     aggregated checksum, so EBS verifies what it got.
//   - The snapshot is asked for with a ClientToken derived from the identity (snapshotToken), so
//     concurrent publishes, also in other processes, and the publish after a killed one are given
//     the same snapshot. A killed publish is resumed: its snapshot, still pending, gets every block
//     again (EBS cannot list what a pending snapshot holds; a block written again is replaced)
//     and is completed; one the killed publish had completed already refuses blocks, and is
//     waited for. A snapshot the token leads to that is no longer usable (EBS cancelled it
//     after snapshotTimeout: state error; or deleted by Unpublish) is deleted, and the token moves
//     on to one derived from that snapshot's ID, which every process derives alike. A completed
//     snapshot without an AMI (killed between the two) is registered, nothing sent.
//   - Concurrent registrations are kept to one AMI by its name (imageName), which EC2 refuses
//     twice in a region: the loser adopts the winner's AMI. Once the AMI is there, any other
//     snapshot tagged with the identity is deleted, so one AMI and one snapshot remain; a publish
//     whose requests failed because another process finished first returns that AMI.
//
// Progress: PhaseUpload in bytes of the non-zero blocks (padded to the block size: what is sent),
// then PhaseImport while EBS completes the snapshot, then PhaseRegister.
func (p *Provider) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, fmt.Errorf("aws: publish: %w", err)
	}
	if err := src.Validate(); err != nil {
		return compute.PublishedImage{}, err
	}
	unlock, err := p.publishing.Lock(ctx, src.Identity)
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("aws: publish %s: %w", src.Identity, err)
	}
	defer unlock()
	if img, ok, err := p.Published(ctx, src.Identity); err != nil || ok {
		return img, err
	}
	blocks, sum, err := scanBlocks(src.Path, src.Size)
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("aws: publish %s: %w", src.Identity, err)
	}
	if src.SHA256 != "" && src.SHA256 != sum {
		return compute.PublishedImage{}, fmt.Errorf("aws: publish %s: %s has sha256 %s, the catalog says %s", src.Identity, src.Path, sum, src.SHA256)
	}
	img, err := p.publish(ctx, src, blocks, progress)
	if err != nil {
		// A publish of the identity in another process may have finished the shared snapshot
		// first and made this one's requests fail: its AMI is as good.
		if ctx.Err() == nil {
			if img, ok, lookErr := p.Published(ctx, src.Identity); lookErr == nil && ok {
				return img, nil
			}
		}
		return compute.PublishedImage{}, fmt.Errorf("aws: publish %s: %w", src.Identity, err)
	}
	return img, nil
}

// publish makes the snapshot and the AMI, then deletes any other snapshot of the identity (one
// a publish on another step of the token's chain left), so one AMI and one snapshot remain.
func (p *Provider) publish(ctx context.Context, src compute.PublishSource, blocks []blockRef, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	snap, err := p.snapshot(ctx, src, blocks, progress)
	if err != nil {
		return compute.PublishedImage{}, err
	}
	if progress != nil {
		progress(compute.PublishProgress{Phase: compute.PhaseRegister})
	}
	img, err := p.register(ctx, src, snap)
	if err != nil {
		return compute.PublishedImage{}, err
	}
	imgs, err := p.images(ctx, filter("image-id", img.ID))
	if err != nil || len(imgs) != 1 {
		return img, nil // the strays stay for Unpublish, which deletes every snapshot of the identity
	}
	keep := imageSnapshots(imgs[0])
	others, err := p.snapshotsOf(ctx, src.Identity)
	if err != nil {
		return img, nil
	}
	for _, id := range others {
		if !slices.Contains(keep, id) {
			p.deleteSnapshot(ctx, id) // best effort, as above
		}
	}
	return img, nil
}

// snapshot returns the ID of a completed snapshot of src, made or finished now.
func (p *Provider) snapshot(ctx context.Context, src compute.PublishSource, blocks []blockRef, progress func(compute.PublishProgress)) (string, error) {
	var burned []string
	for range 8 {
		out, err := p.c.ebs.StartSnapshot(ctx, &ebs.StartSnapshotInput{
			VolumeSize:  aws.Int64(volumeGiB(src.Size)),
			ClientToken: aws.String(snapshotToken(src.Identity, burned)),
			Description: aws.String("drover image " + src.Role + " " + src.Identity),
			Timeout:     aws.Int32(snapshotTimeout),
			Tags: []ebstypes.Tag{
				{Key: aws.String(identityTag), Value: aws.String(src.Identity)},
				{Key: aws.String(roleTag), Value: aws.String(src.Role)},
				{Key: aws.String("Name"), Value: aws.String(imageName(src.Role, src.Identity))},
			},
		})
		if err != nil {
			return "", fmt.Errorf("starting a snapshot: %w", err)
		}
		id := aws.ToString(out.SnapshotId)
		if bs := aws.ToInt32(out.BlockSize); bs != 0 && bs != blockSize {
			return "", fmt.Errorf("snapshot %s has blocks of %d bytes, drover sends %d", id, bs, blockSize)
		}
		state, err := p.snapshotState(ctx, id, aws.ToTime(out.StartTime))
		if err != nil {
			return "", err
		}
		switch state {
		case types.SnapshotStateCompleted:
			return id, nil
		case types.SnapshotStatePending:
			u := &upload{client: p.c.ebs, snapshot: id, path: src.Path, blocks: blocks, workers: p.workers, progress: progress}
			if err := u.run(ctx); err != nil {
				if ctx.Err() != nil || errorCode(err) != "ValidationException" {
					return "", err
				}
				// A pending snapshot that refuses blocks was completed by an earlier publish
				// killed before EBS finished it: wait for that, a while.
				wctx, cancel := context.WithTimeout(ctx, sealedWait)
				defer cancel()
				if werr := p.waitCompleted(wctx, id); werr != nil {
					return "", errors.Join(err, werr)
				}
				return id, nil
			}
			if progress != nil {
				progress(compute.PublishProgress{Phase: compute.PhaseImport})
			}
			return id, p.waitCompleted(ctx, id)
		case types.SnapshotStateError:
			if err := p.deleteSnapshot(ctx, id); err != nil {
				return "", err
			}
		}
		burned = []string{id} // "" state: gone (deleted); the token's next step
	}
	return "", fmt.Errorf("the snapshot tokens of the identity led to 8 unusable snapshots (%v)", burned)
}

// snapshotState is a snapshot's state as EC2 reports it, "" when it does not exist. A snapshot
// StartSnapshot has just made may be unknown to EC2 for a few seconds, so an unknown one that
// started less than a minute ago is asked about again.
func (p *Provider) snapshotState(ctx context.Context, id string, started time.Time) (types.SnapshotState, error) {
	w := p.poller()
	for {
		out, err := p.c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil && !imageGone(err) {
			return "", fmt.Errorf("describing snapshot %s: %w", id, err)
		}
		if err == nil && len(out.Snapshots) > 0 {
			return out.Snapshots[0].State, nil
		}
		if time.Since(started) > time.Minute {
			return "", nil
		}
		if err := w.wait(ctx); err != nil {
			return "", fmt.Errorf("waiting for snapshot %s to be known: %w", id, err)
		}
	}
}

// waitCompleted waits until EC2 reports the snapshot completed. One that goes to error (EBS found
// its blocks wrong) is deleted, so the next Publish starts over.
func (p *Provider) waitCompleted(ctx context.Context, id string) error {
	w := p.poller()
	for {
		state, err := p.snapshotState(ctx, id, time.Now())
		if err != nil {
			return err
		}
		switch state {
		case types.SnapshotStateCompleted:
			return nil
		case types.SnapshotStateError:
			return errors.Join(fmt.Errorf("snapshot %s failed after it was completed", id), p.deleteSnapshot(ctx, id))
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("waiting for snapshot %s to complete: %w", id, err)
		}
	}
}

func (p *Provider) deleteSnapshot(ctx context.Context, id string) error {
	_, err := p.c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err != nil && !imageGone(err) {
		return fmt.Errorf("deleting snapshot %s: %w", id, err)
	}
	return nil
}
