package disk

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ext4 block size the sizing assumes; mkfs.ext4 -T default picks it for any
// root filesystem drover makes.
const blockSize = 4096

// fastSymlinkMax is the longest symlink target ext4 keeps inside the inode.
const fastSymlinkMax = 59

// treeInfo is what Assemble needs to know about a root filesystem tree.
type treeInfo struct {
	kernel  bootFiles // relative to the tree
	usage   usage
	newest  time.Time // newest mtime in the tree
	entries []entry   // every inode, for timestamp normalization
}

// bootFiles names a kernel and its initrd.
type bootFiles struct {
	version string // e.g. 6.1.0-28-amd64
	kernel  string // boot/vmlinuz-VERSION
	initrd  string // boot/initrd.img-VERSION
}

// usage is the space a tree takes once it is an ext4 filesystem, before
// filesystem overhead.
type usage struct {
	bytes  int64 // data and directory blocks
	inodes int64
}

// entry is one path in the tree with the timestamp that ext4 should carry
// for it.
type entry struct {
	path  string // "/"-rooted, as debugfs names it
	mtime time.Time
}

// scanTree walks the tree once: it finds the kernel, measures the tree and
// lists its paths.
func scanTree(root string) (treeInfo, error) {
	var info treeInfo
	k, err := findKernel(root)
	if err != nil {
		return info, err
	}
	info.kernel = k
	seen := make(map[[2]uint64]bool) // hard links count once
	dirs := make(map[string]int64)   // directory -> bytes of its entries
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info.entries = append(info.entries, entry{path: debugfsPath(rel), mtime: fi.ModTime()})
		if d.IsDir() {
			dirs[p] += direntBytes(".") + direntBytes("..")
		}
		if rel != "." {
			dirs[filepath.Dir(p)] += direntBytes(d.Name())
		}
		if fi.ModTime().After(info.newest) {
			info.newest = fi.ModTime()
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		info.usage.inodes++
		info.usage.bytes += inodeBytes(fi)
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("disk: scan tree %s: %w", root, err)
	}
	for _, n := range dirs {
		info.usage.bytes += roundUp(n, blockSize)
	}
	return info, nil
}

// direntBytes is the size of an ext4 directory entry for name. Directory
// sizes are computed from their entries rather than read from the host,
// whose directories only ever grow, so that two trees with the same
// content get the same size of disk.
func direntBytes(name string) int64 { return 8 + roundUp(int64(len(name)), 4) }

// inodeBytes is the data space one inode needs on ext4 with 4 KiB blocks;
// directories are counted from their entries by scanTree.
func inodeBytes(fi fs.FileInfo) int64 {
	switch {
	case fi.Mode().IsRegular():
		return roundUp(fi.Size(), blockSize)
	case fi.Mode()&fs.ModeSymlink != 0 && fi.Size() > fastSymlinkMax:
		return blockSize
	}
	return 0
}

// findKernel picks the newest /boot/vmlinuz-VERSION that has a matching
// /boot/initrd.img-VERSION.
func findKernel(root string) (bootFiles, error) {
	matches, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return bootFiles{}, fmt.Errorf("disk: find kernel: %w", err)
	}
	var versions []string
	for _, m := range matches {
		v := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if isRegular(m) && isRegular(filepath.Join(root, "boot", "initrd.img-"+v)) {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return bootFiles{}, fmt.Errorf("disk: tree %s has no /boot/vmlinuz-VERSION with a /boot/initrd.img-VERSION (install linux-image-amd64 or linux-image-arm64, and initramfs-tools)", root)
	}
	sort.Slice(versions, func(i, j int) bool { return compareVersions(versions[i], versions[j]) < 0 })
	v := versions[len(versions)-1]
	return bootFiles{version: v, kernel: "boot/vmlinuz-" + v, initrd: "boot/initrd.img-" + v}, nil
}

// debugfsPath turns a path relative to the tree into the absolute path
// debugfs resolves inside the filesystem.
func debugfsPath(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + filepath.ToSlash(rel)
}

func isRegular(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// compareVersions orders kernel versions the way people read them: runs of
// digits compare as numbers, everything else as text, so 6.1.0-10 sorts
// after 6.1.0-9.
func compareVersions(a, b string) int {
	ca, cb := versionChunks(a), versionChunks(b)
	for i := 0; i < len(ca) && i < len(cb); i++ {
		x, y := ca[i], cb[i]
		nx, errx := strconv.ParseUint(x, 10, 64)
		ny, erry := strconv.ParseUint(y, 10, 64)
		switch {
		case errx == nil && erry == nil && nx != ny:
			if nx < ny {
				return -1
			}
			return 1
		case (errx != nil || erry != nil) && x != y:
			return strings.Compare(x, y)
		}
	}
	return len(ca) - len(cb)
}

// versionChunks splits s into alternating runs of digits and non-digits.
func versionChunks(s string) []string {
	var chunks []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || isDigit(s[i]) != isDigit(s[i-1]) {
			chunks = append(chunks, s[start:i])
			start = i
		}
	}
	return chunks
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
