package objstore

// What each platform imports from a URL, and so what is uploaded:
//
//   - DigitalOcean custom images (POST /v2/images with a url): "The image must be in the raw,
//     qcow2, vhdx, vdi, or vmdk format. It may be compressed using gzip or bzip2 and must be
//     smaller than 100 GB after being decompressed" (DigitalOcean API reference, images
//     create_custom; the Terraform digitalocean_custom_image page says the same and adds "Raw
//     (.img) with an MBR or GPT partition table"). xz is refused (coreos/fedora-coreos-tracker
//     #395). So drover uploads the raw disk gzip-compressed (CompressGzip): the format it already
//     has, the cheapest to produce, and mostly-empty disks shrink to their data.
//   - Vultr snapshots from a URL (POST /v2/snapshots/create-from-url, with uefi): the control
//     panel's upload page states "Snapshot must be in RAW format (no VMDK, QCOW2, etc)" and
//     "Maximum uploaded snapshot size is 150 GB" (quoted in coreos/fedora-coreos-tracker #355);
//     the vultr.cloud Ansible snapshot module documents its url as "the snapshot image (RAW)", and
//     nothing documents a compressed form. So drover uploads the raw disk as it is, uncompressed.
//
// One more DigitalOcean note for its provider: nanovms/ops #471 (2020) reports its import refused
// URLs with query parameters, which a presigned URL has; the fake follows the API reference,
// which states no such limit.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/klauspost/compress/gzip"
)

// seekData and seekHole are lseek's SEEK_DATA and SEEK_HOLE (Linux, and the BSDs' values).
const (
	seekData = 3
	seekHole = 4
)

// chunk is how much is read and compressed at a time.
const chunk = 1 << 20

// CompressGzip writes raw, gzip-compressed, to dst and returns the bytes written (what an upload
// of dst sends). It streams (memory stays small whatever the disk size) and skips the file's holes
// without reading them, compressing zeros in their place. The output is deterministic: no name, no
// time in the gzip header, a fixed level, so the same raw disk gives the same bytes on a rerun and
// an interrupted upload of them resumes. dst is written to a temporary file in its directory and
// renamed into place when complete, so a failure or cancelled ctx leaves no partial dst (an
// existing dst is replaced only on success). Safe for concurrent use with distinct dst.
func CompressGzip(ctx context.Context, raw, dst string) (written int64, err error) {
	in, err := os.Open(raw)
	if err != nil {
		return 0, fmt.Errorf("objstore: compress: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("objstore: compress: %w", err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("objstore: compress: %s is not a regular file", raw)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return 0, fmt.Errorf("objstore: compress: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	counter := &countingWriter{w: tmp}
	zw, err := gzip.NewWriterLevel(counter, gzip.BestSpeed)
	if err != nil {
		return 0, fmt.Errorf("objstore: compress: %w", err)
	}
	if err := copySparse(ctx, zw, in, st.Size()); err != nil {
		return 0, fmt.Errorf("objstore: compress %s: %w", raw, err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("objstore: compress %s: %w", raw, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("objstore: compress %s: %w", raw, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("objstore: compress %s: %w", raw, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("objstore: compress %s: %w", raw, err)
	}
	return counter.n, nil
}

// copySparse writes the size bytes of f to w, reading only its data extents and writing zeros
// for its holes.
func copySparse(ctx context.Context, w io.Writer, f *os.File, size int64) error {
	zeros := make([]byte, chunk)
	buf := make([]byte, chunk)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			data = size // only a hole is left
		} else if err != nil {
			data = off // no SEEK_DATA here: read everything
		}
		for off < data { // the hole before the data
			n := min(int64(len(zeros)), data-off)
			if _, err := w.Write(zeros[:n]); err != nil {
				return err
			}
			off += n
		}
		if off >= size {
			break
		}
		end, err := f.Seek(off, seekHole)
		if err != nil || end > size {
			end = size
		}
		for off < end {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err == io.EOF {
				return fmt.Errorf("file shrank to %d bytes while read (was %d)", off, size)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// DiskUsage returns the bytes path occupies on disk (its allocated blocks: the bytes in use of a
// sparse raw disk), to set against the bytes uploaded.
func DiskUsage(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("objstore: disk usage: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return st.Size(), nil
	}
	return sys.Blocks * 512, nil
}
