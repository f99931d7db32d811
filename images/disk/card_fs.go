package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// fatSpec is a FAT filesystem of the card.
type fatSpec struct {
	image    string
	size     int64
	bits     int    // 16 or 32
	label    string // at most 11 characters
	serial   string // 8 hex digits
	startLBA int64  // where the partition starts on the card, for the boot sector's hidden sectors
	epoch    time.Time
	files    []espFile
}

// makeFAT builds a FAT filesystem in a plain file, the ESP's way (mkfs.vfat --invariant with a fixed
// volume ID, mtools with SOURCE_DATE_EPOCH), so the same files give the same bytes.
func makeFAT(ctx context.Context, s fatSpec) error {
	if err := createSized(s.image, s.size); err != nil {
		return err
	}
	if _, err := run(ctx, command{
		step: "card " + s.label + " filesystem",
		args: []string{"mkfs.vfat", "--invariant", "-F", fmt.Sprint(s.bits), "-n", s.label,
			"-i", s.serial, "-h", fmt.Sprint(s.startLBA), s.image},
	}); err != nil {
		return err
	}
	return copyToESP(ctx, espSpec{image: s.image, files: s.files}, mtoolsEnv(s.epoch))
}

// makeEmptyExt4 builds an empty ext4 filesystem in a plain file (the card's data partition), with
// the root filesystem's pinned feature set.
func makeEmptyExt4(ctx context.Context, image string, size int64, label string, id uuid, epoch time.Time, workDir string) error {
	if err := createSized(image, size); err != nil {
		return err
	}
	conf := filepath.Join(workDir, "mke2fs-"+label+".conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		return fmt.Errorf("disk: %s filesystem: %w", label, err)
	}
	_, err := run(ctx, command{
		step: label + " filesystem",
		args: []string{"mkfs.ext4", "-q", "-F", "-T", "default", "-L", label, "-U", id.String(),
			"-E", "root_owner=0:0,hash_seed=" + id.derive("ext4-hash-seed").String(), image},
		env: []string{"MKE2FS_CONFIG=" + conf, "E2FSPROGS_FAKE_TIME=" + unixString(epoch)},
	})
	return err
}
