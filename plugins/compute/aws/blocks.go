package aws

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// blockSize is the EBS direct APIs' block size: StartSnapshot answers 524288, and every
// PutSnapshotBlock carries exactly one block of it.
const blockSize = 512 << 10

const gib = 1 << 30

// volumeGiB is the snapshot size of a disk of size bytes: EBS volumes are whole GiB, at least one.
func volumeGiB(size int64) int64 { return max((size+gib-1)/gib, 1) }

// blockRef is one non-zero block of a disk.
type blockRef struct {
	Index int32
	Off   int64
	Len   int // bytes of the file in the block; the rest (a short last block) is zero padding
}

// scanBlocks reads the disk at path, size bytes long, and returns its non-zero blocks: the only
// ones a snapshot needs, since EBS reads an unwritten block as zeros. It reads the file once,
// sequentially, with one block's buffer, and also returns the hex sha256 of the whole file. A file
// of another length than size is refused, so a truncated disk is never published.
func scanBlocks(path string, size int64) (refs []blockRef, sum string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if st.Size() != size {
		return nil, "", fmt.Errorf("%s is %d bytes, the image's size is %d", path, st.Size(), size)
	}
	if (size+blockSize-1)/blockSize > 1<<31-1 {
		return nil, "", fmt.Errorf("%s: %d bytes is more blocks than a snapshot holds", path, size)
	}
	h := sha256.New()
	buf := make([]byte, blockSize)
	for off := int64(0); off < size; off += blockSize {
		n := int(min(blockSize, size-off))
		if _, err := io.ReadFull(f, buf[:n]); err != nil {
			return nil, "", fmt.Errorf("reading %s at %d: %w", path, off, err)
		}
		h.Write(buf[:n])
		if !allZero(buf[:n]) {
			refs = append(refs, blockRef{Index: int32(off / blockSize), Off: off, Len: n})
		}
	}
	return refs, hex.EncodeToString(h.Sum(nil)), nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readBlock reads block r of f into buf (blockSize long), zero-padding a short last block as
// PutSnapshotBlock requires, and returns its SHA-256.
func readBlock(f io.ReaderAt, r blockRef, buf []byte) ([sha256.Size]byte, error) {
	if _, err := f.ReadAt(buf[:r.Len], r.Off); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("reading block %d: %w", r.Index, err)
	}
	clear(buf[r.Len:])
	return sha256.Sum256(buf), nil
}

// linearChecksum is CompleteSnapshot's LINEAR aggregated checksum: the base64 SHA-256 of the
// blocks' raw SHA-256 digests concatenated in ascending block index order (refs are in that
// order, as scanBlocks returns them).
func linearChecksum(digests [][sha256.Size]byte) string {
	h := sha256.New()
	for _, d := range digests {
		h.Write(d[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
