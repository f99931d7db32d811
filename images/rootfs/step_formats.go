package rootfs

import (
	"context"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/disk"
)

const qcow2Name = "disk.qcow2"

// stepFormats converts the raw disk to the other formats asked for, and drops the raw file when it
// was not asked for (its digest is already taken: it stays the image's artifact digest). An SD card
// has one format.
type stepFormats struct{}

func (s *stepFormats) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if req.Card {
		return multistep.ActionContinue // the SD card is written as it is
	}
	if has(req.Disk.Formats, "qcow2") {
		if err := disk.ToQcow2(ctx, stagingPath(state, rawName), stagingPath(state, qcow2Name)); err != nil {
			return fail(state, err)
		}
	}
	if !has(req.Disk.Formats, "raw") {
		if err := os.Remove(stagingPath(state, rawName)); err != nil {
			return fail(state, err)
		}
	}
	return multistep.ActionContinue
}

func (s *stepFormats) Cleanup(multistep.StateBag) {}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
