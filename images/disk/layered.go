package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// BaseLayer makes the root filesystem incrementally: a filesystem image of
// the base tree, made once and kept in ImageDir, is copied into the disk
// and the differences between the base tree and Spec.Tree are written into
// it with debugfs. A build is then a copy of the base image, a few debugfs
// commands and a UUID change instead of writing every file again.
//
// The bytes depend only on the two trees and the Spec, never on whether the
// base image was already kept: a build that makes the base image first
// gives the same disk as one that finds it (TestLayeredColdEqualsWarm).
type BaseLayer struct {
	// Tree is the base tree Spec.Tree was made from, which must not change.
	// Its directory name is part of the base image's key, so it must name
	// its content (as the tree cache's entries do).
	Tree string
	// ImageDir keeps the base filesystem images, at most KeepImages per
	// base tree (one per root size).
	ImageDir string
	// Hint, when set, says which regular files at the same path in both
	// trees may differ in content; the others are taken as equal when their
	// sizes are. Nil compares every such file byte for byte.
	Hint ContentHint
}

// KeepImages is how many base filesystem images (of different root sizes)
// are kept per base tree.
const KeepImages = 2

// baseImageVersion changes when the way a base image is made changes, so
// that images made the old way are not used.
const baseImageVersion = "drover-base-ext4-v2"

// baseNamespace is the UUID namespace of base images' UUIDs and hash seeds.
var baseNamespace = uuid{0x6b, 0x1d, 0x4f, 0x0e, 0x3a, 0x52, 0x4c, 0x8e, 0x9f, 0x11, 0x2d, 0x7a, 0x5e, 0x60, 0x83, 0xc4}

// baseImage opens the base filesystem image of the given size, making it
// (mkfs.ext4 -d of the base tree, times clamped to the epoch) when it is
// not kept yet. The caller closes it. Concurrent builds may both make it;
// each writes a temporary file and renames it, and both make the same
// bytes. Being open, it stays readable when another build prunes it.
func (b builder) baseImage(ctx context.Context, size int64) (*os.File, error) {
	img, err := b.keptBaseImage(ctx, size)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(img)
	if errors.Is(err, fs.ErrNotExist) { // pruned or deleted since: make it again
		if img, err = b.keptBaseImage(ctx, size); err == nil {
			f, err = os.Open(img)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("disk: base image: %w", err)
	}
	return f, nil
}

// keptBaseImage is baseImage's path, made when missing.
func (b builder) keptBaseImage(ctx context.Context, size int64) (string, error) {
	bl := b.spec.Base
	version, err := mke2fsVersion(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n%d\n%s\n%s\n", baseImageVersion, filepath.Base(bl.Tree), size, b.epoch.Unix(), mke2fsConf, version)
	key := hex.EncodeToString(h.Sum(nil))[:24]
	id := baseNamespace.derive(key)
	name := filepath.Base(bl.Tree) + "-" + key + ".ext4"
	img := filepath.Join(bl.ImageDir, name)
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(bl.ImageDir, 0o755); err != nil {
		return "", fmt.Errorf("disk: base image: %w", err)
	}
	info, err := scanTree(bl.Tree)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(bl.ImageDir, "."+name+".tmp-")
	if err != nil {
		return "", fmt.Errorf("disk: base image: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	err = makeRootFS(ctx, rootfsSpec{
		tree: bl.Tree, image: tmp.Name(), size: size, uuid: id,
		hashSeed: id.derive("ext4-hash-seed"), epoch: b.epoch, clamp: true,
		entries: info.entries, workDir: b.work,
	})
	if err != nil {
		return "", fmt.Errorf("%w (making the base filesystem image of %s)", err, bl.Tree)
	}
	if err := digHoles(tmp.Name()); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), img); err != nil {
		return "", fmt.Errorf("disk: base image: %w", err)
	}
	pruneBaseImages(bl.ImageDir, filepath.Base(bl.Tree), KeepImages)
	pruneOrphanBaseImages(bl.ImageDir, filepath.Dir(bl.Tree))
	return img, nil
}

// pruneBaseImages keeps the newest keep images of one base tree. Removing
// an image another build is copying is safe: its open file stays readable.
func pruneBaseImages(dir, tree string, keep int) {
	matches, _ := filepath.Glob(filepath.Join(dir, tree+"-*.ext4"))
	type img struct {
		path string
		mod  time.Time
	}
	var imgs []img
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			imgs = append(imgs, img{m, fi.ModTime()})
		}
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].mod.After(imgs[j].mod) })
	for i := keep; i < len(imgs); i++ {
		_ = os.Remove(imgs[i].path)
	}
}

// pruneOrphanBaseImages removes the base images in dir whose tree is no longer in trees (the tree
// cache prunes a tree that a newer one of the same spec replaced): nothing can ask for them again,
// since a base image's name starts with its tree's. Returns the paths it removed.
func pruneOrphanBaseImages(dir, trees string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.ext4"))
	var removed []string
	for _, m := range matches {
		name := filepath.Base(m)
		cut := strings.LastIndexByte(strings.TrimSuffix(name, ".ext4"), '-')
		if strings.HasPrefix(name, ".") || cut <= 0 {
			continue // a base image being written, or not one of ours
		}
		if _, err := os.Stat(filepath.Join(trees, name[:cut])); errors.Is(err, fs.ErrNotExist) && os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}

func mke2fsVersion(ctx context.Context) (string, error) {
	out, err := run(ctx, command{step: "root filesystem", args: []string{"mke2fs", "-V"}})
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(out, "\n")
	return first, nil
}

// digHoles punches out the all-zero MiB chunks of a file (mkfs.ext4 writes
// its journal and tables as zeros), so that copies of it, which copy only
// data extents, stay as sparse as a disk copied chunk by chunk. The bytes
// read the same.
func digHoles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: base image: %w", err)
	}
	defer f.Close()
	buf, zero := make([]byte, copyChunk), make([]byte, copyChunk)
	const punchHole, keepSize = 0x02, 0x01
	for off := int64(0); ; off += copyChunk {
		n, err := io.ReadFull(f, buf)
		if n > 0 && bytes.Equal(buf[:n], zero[:n]) {
			if perr := syscall.Fallocate(int(f.Fd()), punchHole|keepSize, off, int64(n)); perr != nil {
				return fmt.Errorf("disk: base image: punching a hole at %d: %w", off, perr)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return f.Close()
		}
		if err != nil {
			return fmt.Errorf("disk: base image: %w", err)
		}
	}
}

// copySparse copies the file in into dst at byte offset off, only its
// data extents (SEEK_DATA/SEEK_HOLE), in the kernel (copy_file_range): dst
// is a fresh sparse file whose holes already read as zeros.
func copySparse(ctx context.Context, dst, in *os.File, off int64) error {
	src := in.Name()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("disk: copy %s into disk: %w", src, err)
	}
	const seekData, seekHole = 3, 4
	for pos := int64(0); pos < fi.Size(); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		start, err := in.Seek(pos, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		end, err := in.Seek(start, seekHole)
		if err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		if _, err := in.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		if _, err := dst.Seek(off+start, io.SeekStart); err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		if _, err := io.CopyN(dst, in, end-start); err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		pos = end
	}
	return nil
}
