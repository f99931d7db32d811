package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

const sector = 512

// RootPartition finds the root filesystem in a raw disk image: the first partition (GPT, else MBR)
// that holds an ext2/3/4 superblock, or the whole file when it is a bare ext filesystem. It returns
// the filesystem's byte offset and length in the file.
func RootPartition(raw string) (offset, length int64, err error) {
	f, err := os.Open(raw)
	if err != nil {
		return 0, 0, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("scan: %w", err)
	}
	if isExt(f, 0) {
		return 0, fi.Size(), nil
	}
	parts, err := partitions(f)
	if err != nil {
		return 0, 0, fmt.Errorf("scan: %s: %w", raw, err)
	}
	for _, p := range parts {
		if p[0]+p[1] <= fi.Size() && isExt(f, p[0]) {
			return p[0], p[1], nil
		}
	}
	return 0, 0, fmt.Errorf("scan: %s: no partition holds an ext2/3/4 filesystem", raw)
}

// isExt reports whether an ext2/3/4 superblock (magic 0xEF53 at byte 56 of the superblock, which
// starts 1024 bytes in) is at off.
func isExt(f io.ReaderAt, off int64) bool {
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], off+1024+56); err != nil {
		return false
	}
	return binary.LittleEndian.Uint16(magic[:]) == 0xEF53
}

// partitions reads a GPT (at LBA 1) or else an MBR partition table: each partition's byte offset and
// length, in table order.
func partitions(f io.ReaderAt) ([][2]int64, error) {
	var hdr [92]byte
	if _, err := f.ReadAt(hdr[:], sector); err == nil && string(hdr[:8]) == "EFI PART" {
		entriesLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
		n := int(binary.LittleEndian.Uint32(hdr[80:]))
		size := int(binary.LittleEndian.Uint32(hdr[84:]))
		if n <= 0 || n > 1024 || size < 128 || size > 4096 {
			return nil, fmt.Errorf("a GPT header with %d entries of %d bytes", n, size)
		}
		table := make([]byte, n*size)
		if _, err := f.ReadAt(table, entriesLBA*sector); err != nil {
			return nil, fmt.Errorf("reading the GPT entries: %w", err)
		}
		var out [][2]int64
		for i := 0; i < n; i++ {
			e := table[i*size : (i+1)*size]
			if bytes.Equal(e[:16], make([]byte, 16)) {
				continue // unused entry
			}
			first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
			if last >= first {
				out = append(out, [2]int64{first * sector, (last - first + 1) * sector})
			}
		}
		return out, nil
	}
	var mbr [sector]byte
	if _, err := f.ReadAt(mbr[:], 0); err != nil {
		return nil, fmt.Errorf("reading the partition table: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, errors.New("no partition table (neither GPT nor MBR) and no ext filesystem")
	}
	var out [][2]int64
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		switch e[4] {
		case 0x00, 0x05, 0x0f, 0x85, 0xee: // empty, extended, GPT protective
			continue
		}
		start, count := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		out = append(out, [2]int64{start * sector, count * sector})
	}
	return out, nil
}

// ExtractRoot copies the root filesystem of a raw disk image (see RootPartition) into dir, which must
// exist, with debugfs's rdump (e2fsprogs): no mount, no loop device, no root needed. Regular files,
// directories and symbolic links are copied; device nodes, fifos and sockets are not. Run by another
// user than root, the files belong to that user (their modes are kept): what a scan needs.
func ExtractRoot(ctx context.Context, raw, dir string) error {
	off, _, err := RootPartition(raw)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("debugfs"); err != nil {
		return errors.New("scan: debugfs is not installed (apt-get install e2fsprogs)")
	}
	image := raw
	if off > 0 {
		image += "?offset=" + strconv.FormatInt(off, 10)
	}
	cmd := exec.CommandContext(ctx, "debugfs", "-R", "rdump / "+dir, image)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	// debugfs exits 0 after most failures: its stderr says what went wrong.
	var problems []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "debugfs "): // the version banner
		case strings.Contains(line, "Operation not permitted while") &&
			(strings.Contains(line, "ownership") || strings.Contains(line, "permissions of") || strings.Contains(line, "times of")):
			// Not root: the files are ours, which is all a scan needs.
		default:
			problems = append(problems, line)
		}
	}
	if runErr != nil || len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		if runErr != nil {
			msg = strings.TrimPrefix(runErr.Error()+": "+msg, ": ")
		}
		return fmt.Errorf("scan: extracting the root filesystem of %s with debugfs: %s", raw, msg)
	}
	return nil
}
