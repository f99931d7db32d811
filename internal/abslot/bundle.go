// Package abslot is the Raspberry Pi card's A/B slots as both ends of an update see them: the update
// bundle the rpi builder writes (bundle.go), the card's partitions (mbr.go), autoboot.txt and its
// in-place rewrite (autoboot.go), and the device side of writing a slot over SSH (device.go, run by
// drover-boot on the Pi) with its wire protocol (proto.go, whose sending half the device compute
// provider runs). It imports nothing of drover's, so the builder (images), the provider (plugins)
// and the agent (cmd/drover-boot) share one definition of each.
package abslot

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BlockSize is the unit of a bundle's per-block hashes: an update compares a slot's blocks
// with these and sends only those that differ.
const BlockSize = 1 << 20

// ManifestName is the bundle's manifest file.
const ManifestName = "bundle.json"

// Bundle is an update bundle: the filesystems of a slot (each slot's boot FAT, the root), each gzip-compressed, with the sha256 of the
// image and of the compressed file and the sha256 of every BlockSize block of the image (the last
// one may be short). It is what a Pi's other slot is written from.
type Bundle struct {
	Version   int          `json:"version"`
	BlockSize int          `json:"block_size"`
	Parts     []BundlePart `json:"parts"`
}

// BundlePart is one filesystem image of a bundle.
type BundlePart struct {
	Role             string   `json:"role"`              // "boot" (the slot's FAT) or "root" (its ext4)
	Slot             string   `json:"slot,omitempty"`    // the slot a boot image is for ("a", "b"); "" for any slot
	File             string   `json:"file"`              // the compressed image, in the bundle directory
	Size             int64    `json:"size"`              // the image's length in bytes
	SHA256           string   `json:"sha256"`            // of the image
	CompressedSHA256 string   `json:"compressed_sha256"` // of File
	CompressedSize   int64    `json:"compressed_size"`   // File's length
	Blocks           []string `json:"blocks"`            // sha256 of each BlockSize block, hex
}

// PartSource is one filesystem image to put in a bundle: Name is its file's name without ".gz",
// Path the image, Role "boot" or "root", Slot the slot it is for ("" for either). A slot's boot
// FAT names its own root in cmdline.txt (and has its own label and serial), so a bundle carries one
// boot image per slot and one root image for both.
type PartSource struct{ Name, Path, Role, Slot string }

// WriteBundle writes the parts into dir (made afresh through a temporary sibling and a rename, so a
// failure leaves no half bundle) and returns its manifest, also written as ManifestName.
func WriteBundle(ctx context.Context, dir, work string, parts []PartSource) (*Bundle, error) {
	tmp, err := os.MkdirTemp(work, "bundle-")
	if err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	b := &Bundle{Version: 1, BlockSize: BlockSize}
	for _, p := range parts {
		bp, err := compressPart(ctx, p, filepath.Join(tmp, p.Name+".gz"))
		if err != nil {
			return nil, err
		}
		b.Parts = append(b.Parts, bp)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestName), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("abslot: bundle: %w", err)
	}
	return b, nil
}

// compressPart gzips one image to out, hashing it whole and block by block on the way.
func compressPart(ctx context.Context, p PartSource, out string) (BundlePart, error) {
	bp := BundlePart{Role: p.Role, Slot: p.Slot, File: filepath.Base(out)}
	in, err := os.Open(p.Path)
	if err != nil {
		return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
	}
	defer in.Close()
	f, err := os.Create(out)
	if err != nil {
		return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
	}
	defer f.Close()
	compressedSum := sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, compressedSum), gzip.BestSpeed)
	if err != nil {
		return bp, err
	}
	whole := sha256.New()
	buf := make([]byte, BlockSize)
	for {
		if err := ctx.Err(); err != nil {
			return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
		}
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			block := sha256.Sum256(buf[:n])
			bp.Blocks = append(bp.Blocks, hex.EncodeToString(block[:]))
			whole.Write(buf[:n])
			if _, err := zw.Write(buf[:n]); err != nil {
				return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
			}
			bp.Size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, rerr)
		}
	}
	if err := zw.Close(); err != nil {
		return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return bp, fmt.Errorf("abslot: bundle %s: %w", p.Name, err)
	}
	bp.SHA256 = hex.EncodeToString(whole.Sum(nil))
	bp.CompressedSHA256 = hex.EncodeToString(compressedSum.Sum(nil))
	bp.CompressedSize = fi.Size()
	return bp, f.Close()
}
