package pilab

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The launcher reads the card the way the firmware does, without mounting it: the MBR (and the
// extended partition's chain of EBRs for partitions 5 and up) for where a partition starts, mtools
// for the files of a FAT partition. It reads the card only while no qemu runs, so what it sees is
// what the guest left on it.

const sectorSize = 512

// partitionOffset returns the byte offset of MBR partition n (1-4 primary, 5 and up logical).
func partitionOffset(card string, n int) (int64, error) {
	f, err := os.Open(card)
	if err != nil {
		return 0, fmt.Errorf("pilab: card: %w", err)
	}
	defer f.Close()
	mbr, err := readSector(f, 0)
	if err != nil {
		return 0, fmt.Errorf("pilab: card %s: %w", card, err)
	}
	entries := mbrEntries(mbr)
	if n >= 1 && n <= 4 {
		e := entries[n-1]
		if e.typ == 0 || e.start == 0 {
			return 0, fmt.Errorf("pilab: card %s has no partition %d", card, n)
		}
		if isExtended(e.typ) {
			return 0, fmt.Errorf("pilab: card %s: partition %d is the extended partition, which holds no filesystem", card, n)
		}
		return int64(e.start) * sectorSize, nil
	}
	var ext int64 = -1
	for _, e := range entries {
		if isExtended(e.typ) {
			ext = int64(e.start)
		}
	}
	if n < 5 || ext < 0 {
		return 0, fmt.Errorf("pilab: card %s has no partition %d (logical partitions need an extended one)", card, n)
	}
	// Each EBR holds its logical partition (relative to the EBR) and the next EBR (relative to
	// the extended partition).
	ebr := ext
	for i := 5; i <= 63; i++ {
		sec, err := readSector(f, ebr)
		if err != nil {
			return 0, fmt.Errorf("pilab: card %s, EBR of partition %d: %w", card, i, err)
		}
		es := mbrEntries(sec)
		if i == n {
			if es[0].typ == 0 {
				break
			}
			return (ebr + int64(es[0].start)) * sectorSize, nil
		}
		if es[1].typ == 0 || es[1].start == 0 {
			break
		}
		ebr = ext + int64(es[1].start)
	}
	return 0, fmt.Errorf("pilab: card %s has no partition %d", card, n)
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0f || typ == 0x85 }

type mbrEntry struct {
	typ   byte
	start uint32 // LBA
}

func mbrEntries(sec []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		e := sec[446+16*i:]
		es[i] = mbrEntry{typ: e[4], start: binary.LittleEndian.Uint32(e[8:12])}
	}
	return es
}

func readSector(f *os.File, lba int64) ([]byte, error) {
	sec := make([]byte, sectorSize)
	if _, err := f.ReadAt(sec, lba*sectorSize); err != nil && err != io.EOF {
		return nil, err
	}
	if sec[510] != 0x55 || sec[511] != 0xaa {
		return nil, fmt.Errorf("no MBR signature at sector %d", lba)
	}
	return sec, nil
}

// fatFile is a file of the FAT partition at off on the card, for mtools.
func fatImage(card string, off int64) string { return card + "@@" + strconv.FormatInt(off, 10) }

// readFAT returns the content of name (a path on the partition) from the FAT partition at off.
func readFAT(ctx context.Context, card string, off int64, name string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "mtype", "-i", fatImage(card, off), "::/"+strings.TrimPrefix(name, "/"))
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pilab: reading %s: mtype: %w: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// copyFAT copies name from the FAT partition at off to dst.
func copyFAT(ctx context.Context, card string, off int64, name, dst string) error {
	os.Remove(dst)
	cmd := exec.CommandContext(ctx, "mcopy", "-n", "-i", fatImage(card, off), "::/"+strings.TrimPrefix(name, "/"), dst)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pilab: copying %s off the card: mcopy: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
