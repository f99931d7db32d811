// Package disk turns a root filesystem tree into a bootable raw disk image
// and converts it to qcow2.
//
// The disk is made without root privileges, loop devices or mounts: every
// filesystem is built in a plain file by tools that write files (mkfs.ext4
// -d, mkfs.vfat and mtools, sfdisk) and the pieces are copied into place.
// An amd64 disk boots under UEFI (GRUB as one EFI binary that reads the
// kernel from the ext4 root) and under legacy BIOS (syslinux's gptmbr.bin
// chaining to syslinux on the ESP, which holds a copy of the kernel and
// initrd), with the console on ttyS0. An arm64 disk boots under UEFI only,
// the one way arm64 machines boot, with the same GRUB setup built for
// arm64 and the console on ttyAMA0.
//
// Layout: GPT; partition 1 is a FAT32 ESP (marked LegacyBIOSBootable on
// amd64), partition 2 the ext4 root ("Linux root" type of the
// architecture), last on the disk so it can be grown in place.
//
// The bootloaders boot the kernel version found at build time by its
// versioned name, and BIOS boot uses the ESP's copy: a kernel upgraded
// inside a running machine is not booted. That suits immutable images,
// where every change is a new image.
//
// Every identifier and timestamp is derived from the Spec and the tree's
// content and mtimes (not its atimes or ctimes), so the same tree and Spec
// give the same bytes with the same tool versions.
package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Spec says what disk to make.
type Spec struct {
	// Arch is the Debian architecture the disk boots on: ArchAMD64 (the
	// default when empty) or ArchARM64. It must be the tree's.
	Arch string
	// Tree is a Debian root filesystem tree with /boot/vmlinuz-VERSION and
	// /boot/initrd.img-VERSION; the newest such pair is booted. Assemble
	// only reads it.
	Tree string
	// Output is the raw disk file to write. It appears only when complete;
	// temporary files live next to it and are removed.
	Output string
	// RootUUID is the ext4 root filesystem UUID, found by the bootloaders
	// as root=UUID=. The disk and partition GUIDs and the ext4 hash seed
	// are derived from it.
	RootUUID string
	// ESPSerial is the FAT volume ID of the ESP, 8 hex digits (1A2B-3C4D
	// or 1A2B3C4D). Empty means derived from RootUUID.
	ESPSerial string
	// MinRootSize is the smallest root partition, in bytes.
	MinRootSize int64
	// Headroom is the free space on the root filesystem beyond the tree;
	// zero means DefaultHeadroom (Headroom{Bytes: 1} for next to none).
	Headroom Headroom
	// KernelCmdline is appended to the kernel command line drover sets
	// (root=UUID=... rw console=tty0 console=ttyS0,115200n8; on arm64
	// console=ttyAMA0,115200n8 after that).
	KernelCmdline string
	// SourceDateEpoch stamps everything the tools create (filesystem
	// superblocks, ESP files). Zero means the newest mtime in the tree.
	SourceDateEpoch time.Time
	// Base, when set, makes the root filesystem from a kept image of the
	// base tree plus Tree's differences from it (see BaseLayer) instead of
	// writing the whole tree. Modification times later than the epoch are
	// clamped in the image, so Tree's need not be.
	Base *BaseLayer
}

// Result describes the disk Assemble made.
type Result struct {
	Path          string
	Size          int64  // bytes, the raw file's length
	RootSize      int64  // bytes, root partition and filesystem
	ESPSize       int64  // bytes
	SHA256        string // hex, of the whole raw file: the artifact digest
	KernelVersion string // the kernel the bootloaders boot
	Cmdline       string // the kernel command line the bootloaders pass
}

// Assemble makes a bootable raw disk from s.Tree at s.Output.
func Assemble(ctx context.Context, s Spec) (Result, error) {
	a, root, serial, err := s.check()
	if err != nil {
		return Result{}, err
	}
	info, err := scanTree(s.Tree)
	if err != nil {
		return Result{}, err
	}
	if err := checkKernelArch(filepath.Join(s.Tree, info.kernel.kernel), a); err != nil {
		return Result{}, err
	}
	epoch := s.SourceDateEpoch
	if epoch.IsZero() {
		epoch = info.newest
	}
	work, err := os.MkdirTemp(filepath.Dir(s.Output), "."+filepath.Base(s.Output)+".work-")
	if err != nil {
		return Result{}, fmt.Errorf("disk: %w", err)
	}
	defer os.RemoveAll(work)
	b := builder{spec: s, arch: a, root: root, serial: serial, info: info, epoch: epoch, work: work}
	if s.Base != nil {
		return b.buildLayered(ctx)
	}
	return b.build(ctx)
}

// check validates the spec and the host before any work is done.
func (s Spec) check() (arch, uuid, string, error) {
	switch {
	case s.Tree == "":
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: Tree is empty")
	case s.Output == "":
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: Output is empty")
	case s.MinRootSize < 0 || s.Headroom.Bytes < 0 || s.Headroom.Fraction < 0:
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: sizes must not be negative")
	case s.Base != nil && (s.Base.Tree == "" || s.Base.ImageDir == ""):
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: Base needs Tree and ImageDir")
	}
	a, err := lookupArch(s.Arch)
	if err != nil {
		return arch{}, uuid{}, "", err
	}
	if fi, err := os.Stat(s.Tree); err != nil || !fi.IsDir() {
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: Tree %s is not a directory", s.Tree)
	}
	root, err := parseUUID(s.RootUUID)
	if err != nil {
		return arch{}, uuid{}, "", fmt.Errorf("disk: spec: RootUUID: %w", err)
	}
	serial, err := espSerial(s.ESPSerial, root)
	if err != nil {
		return arch{}, uuid{}, "", err
	}
	if err := checkCmdline(s.KernelCmdline); err != nil {
		return arch{}, uuid{}, "", err
	}
	return a, root, serial, checkTools(a.assembleTools())
}

// builder carries one Assemble call's state through its steps.
type builder struct {
	spec   Spec
	arch   arch
	root   uuid
	serial string
	info   treeInfo
	epoch  time.Time
	work   string
}

func (b builder) build(ctx context.Context) (Result, error) {
	res := Result{Path: b.spec.Output, KernelVersion: b.info.kernel.version, Cmdline: b.arch.kernelCmdline(b.root, b.spec.KernelCmdline)}
	res.RootSize = rootSize(b.info.usage, b.spec.MinRootSize, b.spec.Headroom)
	rootImg := filepath.Join(b.work, "root.ext4")
	err := makeRootFS(ctx, rootfsSpec{
		tree: b.spec.Tree, image: rootImg, size: res.RootSize, uuid: b.root,
		hashSeed: b.root.derive("ext4-hash-seed"), epoch: b.epoch,
		entries: b.info.entries, workDir: b.work,
	})
	if err != nil {
		return Result{}, err
	}
	files, err := b.espFiles(ctx, res.Cmdline)
	if err != nil {
		return Result{}, err
	}
	content, err := totalSize(files)
	if err != nil {
		return Result{}, err
	}
	res.ESPSize = espSize(content)
	l := newLayout(b.arch, b.root, res.ESPSize, res.RootSize)
	espImg := filepath.Join(b.work, "esp.vfat")
	err = makeESP(ctx, espSpec{image: espImg, size: l.espSize, serial: b.serial,
		startLBA: l.espStart / sectorSize, epoch: b.epoch, files: files, syslinux: b.arch.bios})
	if err != nil {
		return Result{}, err
	}
	raw := filepath.Join(b.work, "disk.raw")
	if err := writeDisk(ctx, raw, l, espImg, rootImg, b.arch.bios); err != nil {
		return Result{}, err
	}
	if res.SHA256, err = sha256File(raw); err != nil {
		return Result{}, err
	}
	res.Size = l.total
	if err := os.Rename(raw, b.spec.Output); err != nil {
		return Result{}, fmt.Errorf("disk: %w", err)
	}
	return res, nil
}

// buildLayered is build with the root filesystem made from the base image
// and the layer, written straight into the disk: the partition table, the
// base image copied to the root partition, the layer applied there and the
// UUID set, while the ESP is made beside it; then the ESP is copied in.
func (b builder) buildLayered(ctx context.Context) (Result, error) {
	res := Result{Path: b.spec.Output, KernelVersion: b.info.kernel.version, Cmdline: b.arch.kernelCmdline(b.root, b.spec.KernelCmdline)}
	res.RootSize = rootSize(b.info.usage, b.spec.MinRootSize, b.spec.Headroom)
	base, err := b.baseImage(ctx, res.RootSize)
	if err != nil {
		return Result{}, err
	}
	defer base.Close()
	files, err := b.espFiles(ctx, res.Cmdline)
	if err != nil {
		return Result{}, err
	}
	content, err := totalSize(files)
	if err != nil {
		return Result{}, err
	}
	res.ESPSize = espSize(content)
	lay := newLayout(b.arch, b.root, res.ESPSize, res.RootSize)
	espImg := filepath.Join(b.work, "esp.vfat")
	espDone := make(chan error, 1)
	go func() {
		espDone <- makeESP(ctx, espSpec{image: espImg, size: lay.espSize, serial: b.serial,
			startLBA: lay.espStart / sectorSize, epoch: b.epoch, files: files, syslinux: b.arch.bios})
	}()
	raw := filepath.Join(b.work, "disk.raw")
	err = b.layeredRoot(ctx, raw, lay, base)
	if espErr := <-espDone; err == nil {
		err = espErr
	}
	if err != nil {
		return Result{}, err
	}
	esp, err := os.Open(espImg)
	if err != nil {
		return Result{}, fmt.Errorf("disk: %w", err)
	}
	defer esp.Close()
	if err := copyFileInto(ctx, raw, esp, lay.espStart); err != nil {
		return Result{}, err
	}
	if res.SHA256, err = sha256File(raw); err != nil {
		return Result{}, err
	}
	res.Size = lay.total
	if err := os.Rename(raw, b.spec.Output); err != nil {
		return Result{}, fmt.Errorf("disk: %w", err)
	}
	return res, nil
}

// layeredRoot writes the raw disk's partition table and its root
// filesystem: the base image's data, the layer, the UUID.
func (b builder) layeredRoot(ctx context.Context, raw string, lay layout, base *os.File) error {
	l, err := diffTrees(b.spec.Base.Tree, b.spec.Tree, b.spec.Base.Hint, b.epoch)
	if err != nil {
		return err
	}
	if err := createSized(raw, lay.total); err != nil {
		return err
	}
	if err := writePartitionTable(ctx, raw, lay); err != nil {
		return err
	}
	if b.arch.bios {
		if err := writeGPTMBR(raw); err != nil {
			return err
		}
	}
	if err := copyFileInto(ctx, raw, base, lay.rootStart); err != nil {
		return err
	}
	if err := applyLayer(ctx, raw, lay.rootStart, l, b.epoch, b.work); err != nil {
		return err
	}
	return setUUID(ctx, raw, lay.rootStart, b.root, b.epoch)
}

// copyFileInto copies src's data extents into the file at path, at byte
// offset off.
func copyFileInto(ctx context.Context, path string, src *os.File, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer f.Close()
	if err := copySparse(ctx, f, src, off); err != nil {
		return err
	}
	return f.Close()
}

// espFiles builds the bootloader files and lists everything that goes
// onto the ESP, in the order it is copied: GRUB, then on architectures
// that boot BIOS syslinux's config and its copy of the kernel and initrd.
func (b builder) espFiles(ctx context.Context, cmdline string) ([]espFile, error) {
	k := b.info.kernel
	efi, err := makeGrubEFI(ctx, b.arch, b.work, renderGrubCfg(b.arch, b.root, k, cmdline), b.epoch)
	if err != nil {
		return nil, err
	}
	files := []espFile{{src: efi, dst: b.arch.efiBinary}}
	if !b.arch.bios {
		return files, nil
	}
	cfg, err := writeTextFile(b.work, "syslinux.cfg", renderSyslinuxCfg(k, cmdline))
	if err != nil {
		return nil, err
	}
	return append(files,
		espFile{src: cfg, dst: syslinuxDir + "/syslinux.cfg"},
		espFile{src: filepath.Join(b.spec.Tree, k.kernel), dst: espKernel(k)},
		espFile{src: filepath.Join(b.spec.Tree, k.initrd), dst: espInitrd(k)},
	), nil
}

// writeDisk makes the raw disk at path: partition table, BIOS boot code
// when bios, then the ESP and root filesystems copied to their partitions.
func writeDisk(ctx context.Context, path string, l layout, espImg, rootImg string, bios bool) error {
	if err := createSized(path, l.total); err != nil {
		return err
	}
	if err := writePartitionTable(ctx, path, l); err != nil {
		return err
	}
	if bios {
		if err := writeGPTMBR(path); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer f.Close()
	if err := copyInto(ctx, f, espImg, l.espStart); err != nil {
		return err
	}
	if err := copyInto(ctx, f, rootImg, l.rootStart); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return f.Close()
}

func totalSize(files []espFile) (int64, error) {
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f.src)
		if err != nil {
			return 0, fmt.Errorf("disk: %w", err)
		}
		n += fi.Size()
	}
	return n, nil
}
