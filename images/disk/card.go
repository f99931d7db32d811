package disk

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/abslot"
)

// A Raspberry Pi SD card with A/B slots, made like the GPT disk: every filesystem in a plain file
// (mkfs.vfat and mtools, mkfs.ext4 -d), the MBR by sfdisk on the file, the pieces copied into place;
// no loop device, no mount, no root privileges beyond reading the tree.
//
// Layout (MBR, 4 MiB aligned as SD cards' erase blocks like it):
//
//	1  FAT16  "AUTOBOOT"  autoboot.txt: tryboot_a_b=1, boot_partition=2
//	2  FAT32  "BOOT-A"    slot A: the tree's /boot/firmware (GPU firmware, device trees, kernel,
//	                      initramfs, config.txt) and a cmdline.txt whose root is partition 5
//	3  FAT32  "BOOT-B"    slot B: the same, root partition 6
//	4  extended
//	5  ext4   "root"      slot A's root
//	6  ext4   "root"      slot B's root, the same filesystem as A's on a new card
//	7  ext4   "data"      kept across updates; it fills the card up to a power of two
//
// The card's length is a power of two, as qemu's raspi machines require of an SD card. autoboot.txt
// is read by the Pi 4's and 5's bootloader; a slot's cmdline.txt names its root by PARTUUID
// (the MBR disk identifier and the partition number), which is what the firmware cannot mix up.

const (
	cardAlign    = 4 * mib
	autobootSize = 16 * mib
	minCardBoot  = 256 * mib
	minCardData  = 256 * mib
	// CardDataPartition is the card's data partition, kept across updates.
	CardDataPartition = 7
	cardFirmwareIn    = "boot/firmware" // where raspi-firmware's hooks gather the boot files in the tree
)

// AutobootTxt is partition 1's autoboot.txt: the firmware boots partition 2 (slot A), and on a
// one-time trial partition 3 (tryboot_a_b=1: it reads that partition's config.txt rather than a
// tryboot.txt). It is one sector long, padded with comments, so the device commits a slot by
// rewriting that one sector (abslot.WriteAutoboot).
var AutobootTxt = abslot.Autoboot(abslot.Slots[0])

// CardSpec says what SD card to make.
type CardSpec struct {
	// Tree is an arm64 Debian tree with raspi-firmware installed: /boot/firmware holds start*.elf,
	// the device trees, vmlinuz, initrd.img and config.txt. Only read.
	Tree string
	// Output is the card image to write; it appears only when complete.
	Output string
	// BundleDir is the update bundle's directory (CardBundle), written afresh; "" for none.
	BundleDir string
	// RootUUID is the root filesystems' UUID (both slots'); the FAT serials and the ext4 hash seed
	// are derived from it, and the MBR disk identifier when DiskID is "".
	RootUUID string
	// DiskID is the MBR disk identifier, 8 hex digits. Every image that updates the same cards
	// must have the same one: each slot's cmdline.txt names its root by PARTUUID (DISKID-0N), and
	// an update writes that cmdline.txt onto a card whose identifier does not change.
	DiskID string
	// MinRootSize and Headroom size each root slot as Spec's do the GPT disk's root.
	MinRootSize int64
	Headroom    Headroom
	// KernelCmdline is appended to the command line drover sets in each slot's cmdline.txt.
	KernelCmdline string
	// SourceDateEpoch stamps every file and superblock; zero means the newest mtime in the tree.
	SourceDateEpoch time.Time
}

// CardSlot is one of the card's two slots.
type CardSlot struct {
	Name          string `json:"name"`           // "a" or "b"
	BootPartition int    `json:"boot_partition"` // 2 or 3
	RootPartition int    `json:"root_partition"` // 5 or 6
	RootPARTUUID  string `json:"root_partuuid"`  // DISKID-0N
	Cmdline       string `json:"cmdline"`
}

// CardResult describes the card Assemble made.
type CardResult struct {
	Path          string
	Size          int64  // bytes, a power of two
	SHA256        string // hex, of the whole card image
	DiskID        string // MBR disk identifier, 8 hex digits
	BootSize      int64  // each slot's boot partition
	RootSize      int64  // each slot's root filesystem
	RootPartition int64  // each slot's root partition: RootSize and room for updates to grow
	DataSize      int64  // partition 7
	KernelVersion string
	Slots         []CardSlot
	Bundle        *Bundle // nil without a BundleDir
}

// cardLayout is where every partition is, in bytes.
type cardLayout struct {
	diskID              string
	autobootStart       int64
	bootStart           [2]int64
	bootSize            int64
	extStart            int64
	rootStart           [2]int64
	rootSize            int64
	dataStart, dataSize int64
	total               int64
}

// newCardLayout places the partitions for root filesystems of rootFS bytes. Each root partition
// has room for an update's root to grow: at least a quarter of rootFS, and a quarter of what the
// card has left up to its power of two (the data partition keeps the other half of that). An
// update whose root filesystem is larger than its slot's partition cannot be written (a new card
// would be needed), and a kernel or package update grows the root.
func newCardLayout(diskID string, bootSize, rootFS int64) cardLayout {
	l := placeCard(diskID, bootSize, rootFS+roundUp(rootFS/4, cardAlign))
	if grow := (l.total - l.dataStart - minCardData) / 4 / cardAlign * cardAlign; grow > 0 {
		l = placeCard(diskID, bootSize, l.rootSize+grow)
	}
	return l
}

// placeCard places the partitions; each logical one has an aligned gap before it for its EBR.
func placeCard(diskID string, bootSize, rootSize int64) cardLayout {
	l := cardLayout{diskID: diskID, bootSize: bootSize, rootSize: rootSize, autobootStart: cardAlign}
	l.bootStart[0] = l.autobootStart + autobootSize
	l.bootStart[1] = l.bootStart[0] + bootSize
	l.extStart = l.bootStart[1] + bootSize
	l.rootStart[0] = l.extStart + cardAlign
	l.rootStart[1] = l.rootStart[0] + rootSize + cardAlign
	l.dataStart = l.rootStart[1] + rootSize + cardAlign
	l.total = nextPowerOfTwo(l.dataStart + minCardData)
	l.dataSize = l.total - l.dataStart
	return l
}

func nextPowerOfTwo(n int64) int64 {
	p := int64(1)
	for p < n {
		p <<= 1
	}
	return p
}

// partUUID is the PARTUUID the kernel gives MBR partition n.
func (l cardLayout) partUUID(n int) string { return fmt.Sprintf("%s-%02x", l.diskID, n) }

// sfdiskScript is the MBR as sfdisk input: FAT16 (LBA) for autoboot, FAT32 (LBA) for the boot
// slots, the extended partition to the end, Linux for the roots and the data.
func (l cardLayout) sfdiskScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: dos\nlabel-id: 0x%s\nunit: sectors\nsector-size: %d\n\n", l.diskID, sectorSize)
	part := func(start, size int64, typ string) {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s\n", start/sectorSize, size/sectorSize, typ)
	}
	part(l.autobootStart, autobootSize, "e")
	part(l.bootStart[0], l.bootSize, "c")
	part(l.bootStart[1], l.bootSize, "c")
	part(l.extStart, l.total-l.extStart, "5")
	part(l.rootStart[0], l.rootSize, "83")
	part(l.rootStart[1], l.rootSize, "83")
	part(l.dataStart, l.dataSize, "83")
	return b.String()
}

// AssembleCard makes the SD card image at s.Output and, with s.BundleDir, the update bundle of
// slot A's filesystems. A failure leaves neither the card nor the bundle behind; temporary files
// live next to the card and are removed. Not safe to run twice at once on the same Output.
func AssembleCard(ctx context.Context, s CardSpec) (CardResult, error) {
	if s.Tree == "" || s.Output == "" {
		return CardResult{}, fmt.Errorf("disk: card spec: Tree and Output are required")
	}
	root, err := parseUUID(s.RootUUID)
	if err != nil {
		return CardResult{}, fmt.Errorf("disk: card spec: RootUUID: %w", err)
	}
	if err := checkCmdline(s.KernelCmdline); err != nil {
		return CardResult{}, err
	}
	if err := checkTools(cardTools()); err != nil {
		return CardResult{}, err
	}
	info, err := scanTree(s.Tree)
	if err != nil {
		return CardResult{}, err
	}
	a, _ := lookupArch(ArchARM64)
	if err := checkKernelArch(filepath.Join(s.Tree, info.kernel.kernel), a); err != nil {
		return CardResult{}, err
	}
	bootFiles, err := cardBootFiles(s.Tree, info.kernel)
	if err != nil {
		return CardResult{}, err
	}
	epoch := s.SourceDateEpoch
	if epoch.IsZero() {
		epoch = info.newest
	}
	work, err := os.MkdirTemp(filepath.Dir(s.Output), "."+filepath.Base(s.Output)+".work-")
	if err != nil {
		return CardResult{}, fmt.Errorf("disk: %w", err)
	}
	defer os.RemoveAll(work)

	content, err := totalSize(bootFiles)
	if err != nil {
		return CardResult{}, err
	}
	bootSize := max(minCardBoot, roundUp(content+content/4+16*mib, cardAlign))
	rootBytes := roundUp(rootSize(info.usage, s.MinRootSize, s.Headroom), cardAlign)
	diskID := strings.ToLower(s.DiskID)
	if diskID == "" {
		diskID = fmt.Sprintf("%x", root.derive("mbr-disk-id").bytes()[:4])
	} else if len(diskID) != 8 || strings.Trim(diskID, "0123456789abcdef") != "" || diskID == "00000000" {
		return CardResult{}, fmt.Errorf("disk: card spec: DiskID %q: want 8 hex digits, not all zero", s.DiskID)
	}
	l := newCardLayout(diskID, bootSize, rootBytes)
	res := CardResult{Path: s.Output, Size: l.total, DiskID: diskID, BootSize: bootSize, RootSize: rootBytes, RootPartition: l.rootSize,
		DataSize: l.dataSize, KernelVersion: info.kernel.version}

	rootImg := filepath.Join(work, "root.ext4")
	if err := makeRootFS(ctx, rootfsSpec{tree: s.Tree, image: rootImg, size: rootBytes, uuid: root,
		hashSeed: root.derive("ext4-hash-seed"), epoch: epoch, entries: info.entries, workDir: work}); err != nil {
		return CardResult{}, err
	}
	dataImg := filepath.Join(work, "data.ext4")
	if err := makeEmptyExt4(ctx, dataImg, l.dataSize, "data", root.derive("data"), epoch, work); err != nil {
		return CardResult{}, err
	}
	autoboot, err := writeTextFile(work, "autoboot.txt", AutobootTxt)
	if err != nil {
		return CardResult{}, err
	}
	autobootImg := filepath.Join(work, "autoboot.vfat")
	if err := makeFAT(ctx, fatSpec{image: autobootImg, size: autobootSize, bits: 16, label: "AUTOBOOT",
		serial: fatSerial(root, "autoboot"), startLBA: l.autobootStart / sectorSize, epoch: epoch,
		files: []espFile{{src: autoboot, dst: "autoboot.txt"}}}); err != nil {
		return CardResult{}, err
	}
	var bootImgs [2]string
	for i, name := range []string{"a", "b"} {
		slot := CardSlot{Name: name, BootPartition: 2 + i, RootPartition: 5 + i, RootPARTUUID: l.partUUID(5 + i)}
		slot.Cmdline = cardCmdline(slot.RootPARTUUID, s.KernelCmdline)
		cmdline, err := writeTextFile(work, "cmdline-"+name+".txt", slot.Cmdline+"\n")
		if err != nil {
			return CardResult{}, err
		}
		bootImgs[i] = filepath.Join(work, "boot-"+name+".vfat")
		if err := makeFAT(ctx, fatSpec{image: bootImgs[i], size: bootSize, bits: 32, label: "BOOT-" + strings.ToUpper(name),
			serial: fatSerial(root, "boot-"+name), startLBA: l.bootStart[i] / sectorSize, epoch: epoch,
			files: append(slices.Clone(bootFiles), espFile{src: cmdline, dst: "cmdline.txt"})}); err != nil {
			return CardResult{}, err
		}
		res.Slots = append(res.Slots, slot)
	}
	card := filepath.Join(work, "card.img")
	if err := writeCard(ctx, card, l, autobootImg, bootImgs, rootImg, dataImg); err != nil {
		return CardResult{}, err
	}
	if res.SHA256, err = sha256File(card); err != nil {
		return CardResult{}, err
	}
	if s.BundleDir != "" {
		b, err := abslot.WriteBundle(ctx, s.BundleDir, work, []abslot.PartSource{
			{Name: "boot-a.vfat", Path: bootImgs[0], Role: "boot", Slot: "a"}, {Name: "boot-b.vfat", Path: bootImgs[1], Role: "boot", Slot: "b"},
			{Name: "root.ext4", Path: rootImg, Role: "root"}})
		if err != nil {
			return CardResult{}, err
		}
		res.Bundle = b
	}
	if err := os.Rename(card, s.Output); err != nil {
		return CardResult{}, fmt.Errorf("disk: %w", err)
	}
	return res, nil
}

// cardCmdline is a slot's kernel command line: its own root, the serial console the Pi's GPIO
// header carries (ttyS1, the mini UART, with enable_uart=1 in Debian's config.txt) and the screen,
// and the rest as raspi-firmware writes it (cma=64M for the Pi 4's GPU driver). panic=10 reboots
// 10 s after a kernel panic, and after the initramfs gives up (no root, a failed fsck: its shell
// would wait forever, before the watchdog is armed): a trial that cannot boot returns to the
// committed slot by itself.
func cardCmdline(rootPARTUUID, extra string) string {
	c := "console=tty0 console=ttyS1,115200 root=PARTUUID=" + rootPARTUUID + " rw rootwait fsck.repair=yes net.ifnames=0 cma=64M panic=10"
	if extra != "" {
		c += " " + extra
	}
	return c
}

// cardBootFiles lists the tree's /boot/firmware, in a fixed order (directories' files after
// theirs), without its cmdline.txt, which each slot writes its own of. It must hold start*.elf
// (without one the firmware does not take the partition as a boot partition), config.txt, and the
// kernel and initramfs of the tree's newest kernel, which raspi-firmware's hooks copy there under
// their versioned names (config.txt names them).
func cardBootFiles(tree string, k bootFiles) ([]espFile, error) {
	dir := filepath.Join(tree, cardFirmwareIn)
	var files []espFile
	hasStart := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == "cmdline.txt" {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("/%s/%s is not a regular file; a FAT boot partition holds only files", cardFirmwareIn, rel)
		}
		if path.Dir(rel) == "." && strings.HasPrefix(rel, "start") && strings.HasSuffix(rel, ".elf") {
			hasStart = true
		}
		files = append(files, espFile{src: p, dst: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("disk: card boot files: %w", err)
	}
	for _, want := range []string{path.Base(k.kernel), path.Base(k.initrd), "config.txt"} {
		if !slices.ContainsFunc(files, func(f espFile) bool { return f.dst == want }) {
			return nil, fmt.Errorf("disk: card boot files: /%s has no %s (raspi-firmware's kernel hooks put it there; was the initramfs made?)", cardFirmwareIn, want)
		}
	}
	if !hasStart {
		return nil, fmt.Errorf("disk: card boot files: /%s has no start*.elf (install raspi-firmware in the tree)", cardFirmwareIn)
	}
	return files, nil
}

// fatSerial derives a FAT volume ID from the root UUID.
func fatSerial(root uuid, name string) string {
	return strings.ToUpper(fmt.Sprintf("%x", root.derive("fat-serial-" + name).bytes()[:4]))
}

// cardTools are the programs AssembleCard runs.
func cardTools() []Tool {
	return []Tool{{Name: "mkfs.vfat", Package: "dosfstools"}, {Name: "mcopy", Package: "mtools"},
		{Name: "mmd", Package: "mtools"}, {Name: "mkfs.ext4", Package: "e2fsprogs"},
		{Name: "debugfs", Package: "e2fsprogs"}, {Name: "sfdisk", Package: "fdisk"}}
}

// writeCard makes the card image at path: the MBR, then every filesystem copied to its partition.
func writeCard(ctx context.Context, path string, l cardLayout, autoboot string, boot [2]string, root, data string) error {
	if err := createSized(path, l.total); err != nil {
		return err
	}
	if _, err := run(ctx, command{step: "card partition table",
		args:  []string{"sfdisk", "--no-reread", "--no-tell-kernel", "--quiet", path},
		stdin: strings.NewReader(l.sfdiskScript())}); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer f.Close()
	for _, p := range []struct {
		img string
		off int64
	}{{autoboot, l.autobootStart}, {boot[0], l.bootStart[0]}, {boot[1], l.bootStart[1]},
		{root, l.rootStart[0]}, {root, l.rootStart[1]}, {data, l.dataStart}} {
		if err := copyInto(ctx, f, p.img, p.off); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return f.Close()
}
