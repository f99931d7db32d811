package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/disk"
)

const rawName = "disk.raw"

// stepDisk assembles the raw GPT disk (ESP with GRUB for UEFI and, on amd64, syslinux for BIOS; ext4
// root) in the staging directory, without root privileges or loop devices. The staging Cleanup removes it on
// failure.
type stepDisk struct{}

func (s *stepDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	res, err := disk.Assemble(ctx, disk.Spec{
		Tree:            treeDir(state),
		Arch:            req.Base.Arch,
		Output:          stagingPath(state, rawName),
		RootUUID:        uuidFromIdentity(req.Identity()),
		MinRootSize:     req.Disk.MinSize,
		Headroom:        disk.Headroom{Fraction: float64(req.Disk.Headroom) / 100, Bytes: disk.DefaultHeadroom().Bytes},
		SourceDateEpoch: req.Epoch,
	})
	if err != nil {
		return fail(state, err)
	}
	state.Put(keyDisk, res)
	return multistep.ActionContinue
}

func (s *stepDisk) Cleanup(multistep.StateBag) {}
