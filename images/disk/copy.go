package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// copyChunk is the unit of copying; an all-zero chunk is skipped.
const copyChunk = mib

// copyInto copies the file src into dst at byte offset off, like dd
// conv=notrunc, but skips all-zero chunks so that the disk stays sparse
// (dst is a fresh sparse file, so skipped ranges already read as zeros).
func copyInto(ctx context.Context, dst *os.File, src string, off int64) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("disk: copy %s into disk: %w", src, err)
	}
	defer in.Close()
	buf := make([]byte, copyChunk)
	zero := make([]byte, copyChunk)
	for pos := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], off+pos); werr != nil {
				return fmt.Errorf("disk: copy %s into disk: %w", src, werr)
			}
		}
		pos += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("disk: copy %s into disk: %w", src, err)
		}
	}
}

// sha256File is the artifact digest: the sha256 of the whole raw disk.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("disk: digest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("disk: digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
