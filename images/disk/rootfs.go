package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// inodeRatio is bytes per inode (mke2fs -T default); the root must be
	// big enough that the tree's inodes fit with room to spare.
	inodeRatio = 16384
	// minFreeInodes keeps a tiny tree from getting a filesystem that is
	// full of inodes on first boot.
	minFreeInodes = 4096
	// metadataPercent is the share of an ext4 filesystem not available for
	// data: 5% reserved for root, inode tables (256 bytes per 16 KiB) and
	// bitmaps, group descriptors and reserved GDT blocks, rounded up.
	metadataPercent = 8
)

// mke2fsConf pins the ext4 feature set instead of taking the host's
// /etc/mke2fs.conf, so the image does not change with the build host and
// stays readable by GRUB 2.06 (no metadata_csum_seed, no orphan_file) and
// by the bookworm kernel. It matches bookworm's defaults.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 5.0

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	default = {
		inode_ratio = 16384
	}
`

// Headroom is the free space the root filesystem gets on top of the tree:
// Fraction of the tree's size plus Bytes. The zero value means
// DefaultHeadroom.
type Headroom struct {
	Fraction float64
	Bytes    int64
}

// DefaultHeadroom leaves room for logs, package caches and small changes
// at run time without making every image big.
func DefaultHeadroom() Headroom { return Headroom{Fraction: 0.25, Bytes: 128 * mib} }

// rootSize is the size of the root partition and filesystem: the tree plus
// headroom, plus ext4's journal and metadata, at least minSize and enough
// for the tree's inodes, rounded up to a whole MiB.
func rootSize(u usage, minSize int64, h Headroom) int64 {
	if h == (Headroom{}) {
		h = DefaultHeadroom()
	}
	data := u.bytes + int64(float64(u.bytes)*h.Fraction) + h.Bytes
	size := data * 100 / (100 - metadataPercent)
	size += journalSize(size)
	inodes := u.inodes + int64(float64(u.inodes)*h.Fraction) + minFreeInodes
	size = max(size, inodes*inodeRatio, minSize)
	return roundUp(size, mib)
}

// journalSize follows e2fsprogs' ext2fs_default_journal_size for 4 KiB
// blocks.
func journalSize(fsBytes int64) int64 {
	blocks := fsBytes / blockSize
	switch {
	case blocks < 32768:
		return 4 * mib
	case blocks < 256*1024:
		return 16 * mib
	case blocks < 512*1024:
		return 32 * mib
	case blocks < 4096*1024:
		return 64 * mib
	case blocks < 8192*1024:
		return 128 * mib
	case blocks < 16384*1024:
		return 256 * mib
	case blocks < 32768*1024:
		return 512 * mib
	}
	return 1024 * mib
}

// rootfsSpec is what makeRootFS needs.
type rootfsSpec struct {
	tree     string
	image    string // created, size bytes long
	size     int64
	uuid     uuid
	epoch    time.Time
	entries  []entry
	workDir  string // for the mke2fs.conf and the debugfs script
	hashSeed uuid
	// clamp sets modification times later than epoch to epoch, as a base
	// image needs (its tree was never clamped).
	clamp bool
}

// makeRootFS builds the ext4 root filesystem from the tree into a plain
// file with mkfs.ext4 -d, which copies the tree (owners, modes, xattrs,
// hard links) without mounting anything, then makes its timestamps
// depend only on the tree's content and mtimes.
func makeRootFS(ctx context.Context, s rootfsSpec) error {
	if err := createSized(s.image, s.size); err != nil {
		return err
	}
	conf := filepath.Join(s.workDir, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		return fmt.Errorf("disk: root filesystem: %w", err)
	}
	_, err := run(ctx, command{
		step: "root filesystem",
		args: []string{"mkfs.ext4", "-q", "-F", "-T", "default", "-L", "root",
			"-U", s.uuid.String(),
			"-E", "root_owner=0:0,hash_seed=" + s.hashSeed.String(),
			"-d", s.tree, s.image},
		env: []string{"MKE2FS_CONFIG=" + conf, "E2FSPROGS_FAKE_TIME=" + unixString(s.epoch)},
	})
	if err != nil {
		return fmt.Errorf("%w\nhint: if the filesystem is full, raise Spec.MinRootSize or Spec.Headroom", err)
	}
	return normalizeTimes(ctx, s)
}

// normalizeTimes sets every inode's atime and ctime to its mtime.
// mkfs.ext4 -d copies them from the tree, where ctime is when the file was
// unpacked and atime changes when mkfs itself reads the file, so without
// this two images of the same tree would differ.
func normalizeTimes(ctx context.Context, s rootfsSpec) error {
	script := filepath.Join(s.workDir, "times.debugfs")
	var clamp time.Time
	if s.clamp {
		clamp = s.epoch
	}
	if err := os.WriteFile(script, []byte(timesScript(s.entries, clamp)), 0o644); err != nil {
		return fmt.Errorf("disk: timestamps: %w", err)
	}
	out, err := run(ctx, command{
		step: "timestamps",
		args: []string{"debugfs", "-w", "-f", script, s.image},
		env:  []string{"E2FSPROGS_FAKE_TIME=" + unixString(s.epoch)},
	})
	if err != nil {
		return err
	}
	if errs := debugfsErrors(out); len(errs) > 0 {
		return fmt.Errorf("disk: timestamps: debugfs -f %s: %d commands failed:\n%s", script, len(errs), lastLines(strings.Join(errs, "\n"), outputTailLines))
	}
	return nil
}

// debugfsErrors picks the complaints out of debugfs -f output: debugfs
// exits 0 even when commands fail, and prints only its banner and the
// echoed commands when all goes well.
func debugfsErrors(out string) []string {
	var errs []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.TrimSpace(line) == "",
			strings.HasPrefix(line, "debugfs: "),                               // an echoed command
			strings.HasPrefix(line, "Allocated inode: "),                       // write's report
			strings.HasPrefix(line, "debugfs ") && strings.Contains(line, "("): // the version banner
			continue
		}
		errs = append(errs, line)
	}
	return errs
}

// timesScript renders debugfs commands that set atime and ctime to mtime,
// and with a non-zero clamp a later mtime to clamp first. Paths are quoted
// the way debugfs' parser reads them (a quote inside quotes is doubled); a
// path with a newline cannot be written and keeps its times.
func timesScript(entries []entry, clamp time.Time) string {
	var b strings.Builder
	for _, e := range entries {
		if strings.ContainsAny(e.path, "\n\r") {
			continue
		}
		p := `"` + strings.ReplaceAll(e.path, `"`, `""`) + `"`
		mt := e.mtime
		if !clamp.IsZero() && mt.After(clamp) {
			mt = clamp
			fmt.Fprintf(&b, "sif %s mtime @%s\n", p, unixString(mt))
		}
		t := unixString(mt)
		fmt.Fprintf(&b, "sif %s atime @%s\nsif %s ctime @%s\n", p, t, p, t)
	}
	return b.String()
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// createSized creates (or truncates) path as a sparse file of size bytes.
func createSized(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("disk: %w", err)
	}
	return f.Close()
}
