package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/disk"
	"github.com/drover-dev/drover/images/tree"
)

const rawName = "disk.raw"

// stepDisk assembles the raw GPT disk (ESP with GRUB for UEFI and, on amd64, syslinux for BIOS; ext4
// root) in the staging directory, without root privileges or loop devices. The staging Cleanup removes it on
// failure.
type stepDisk struct{}

func (s *stepDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if req.Card {
		return s.card(ctx, state)
	}
	res, err := disk.Assemble(ctx, disk.Spec{
		Tree:            treeDir(state),
		Arch:            req.Base.Arch,
		Output:          stagingPath(state, rawName),
		RootUUID:        uuidFromIdentity(req.Identity()),
		MinRootSize:     req.Disk.MinSize,
		Headroom:        disk.Headroom{Fraction: float64(req.Disk.Headroom) / 100, Bytes: disk.DefaultHeadroom().Bytes},
		SourceDateEpoch: req.Epoch,
		Base:            baseLayer(state),
	})
	if err != nil {
		return fail(state, err)
	}
	state.Put(keyDisk, res)
	return multistep.ActionContinue
}

func (s *stepDisk) Cleanup(multistep.StateBag) {}

// Names of the "rpi" builder's artifacts in the image directory.
const (
	cardName   = "card.img"
	bundleName = "bundle"
)

// card assembles the Raspberry Pi SD card and its update bundle in the staging directory (the
// "rpi" builder), and records it as the disk too: the card is the image's artifact.
func (s *stepDisk) card(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	res, err := disk.AssembleCard(ctx, disk.CardSpec{
		Tree:            treeDir(state),
		Output:          stagingPath(state, cardName),
		BundleDir:       stagingPath(state, bundleName),
		RootUUID:        uuidFromIdentity(req.Identity()),
		DiskID:          cardDiskID(req.Role),
		MinRootSize:     req.Disk.MinSize,
		Headroom:        disk.Headroom{Fraction: float64(req.Disk.Headroom) / 100, Bytes: disk.DefaultHeadroom().Bytes},
		SourceDateEpoch: req.Epoch,
	})
	if err != nil {
		return fail(state, err)
	}
	state.Put(keyCard, res)
	state.Put(keyDisk, disk.Result{Path: res.Path, Size: res.Size, RootSize: res.RootSize, ESPSize: res.BootSize,
		SHA256: res.SHA256, KernelVersion: res.KernelVersion, Cmdline: res.Slots[0].Cmdline})
	return multistep.ActionContinue
}

// baseImageDir is where, in the tree cache's directory, the base trees' filesystem images are kept.
const baseImageDir = "rootfs"

// baseLayer has the root filesystem made from the base tree's kept filesystem image plus the work
// tree's changes. Which files may have changed is known: an overlay's upper directory holds them, and
// a copy's have a change time after the copy; without either every file is compared.
func baseLayer(state multistep.StateBag) *disk.BaseLayer {
	req := request(state)
	if req.Cache == nil || req.Cache.Dir == "" {
		return nil
	}
	return &disk.BaseLayer{Tree: state.Get(keyBase).(string), ImageDir: filepath.Join(req.Cache.Dir, baseImageDir),
		Hint: changedHint(state)}
}

// changedHint says which paths of the work tree may differ from the base tree's (disk.ContentHint):
// an overlay's upper directory holds them all, and a copy's have a change time after the copy.
// Nil when neither is known.
func changedHint(state multistep.StateBag) func(rel string) bool {
	if o, ok := state.GetOk(keyOverlay); ok {
		return o.(*tree.Overlay).InUpper
	}
	if copied, ok := state.GetOk(keyCopied); ok {
		root := treeDir(state)
		return func(rel string) bool {
			fi, err := os.Lstat(filepath.Join(root, rel))
			return err != nil || !images.ChangeTime(fi).Before(copied.(time.Time))
		}
	}
	return nil
}

// cardDiskID is the MBR disk identifier of every card of role: the same for all its images, since
// an update writes a slot's cmdline.txt, which names the root by PARTUUID (DISKID-0N), onto a card
// written from an earlier image.
func cardDiskID(role string) string {
	sum := sha256.Sum256([]byte("drover card disk id\x00" + role))
	id := hex.EncodeToString(sum[:4])
	if id == "00000000" {
		id = "00000001"
	}
	return id
}
