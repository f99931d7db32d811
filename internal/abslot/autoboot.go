package abslot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// AutobootPartition holds autoboot.txt, a small FAT the firmware reads first.
const AutobootPartition = 1

// AutobootSize is autoboot.txt's length, always: one sector, padded with comment lines. A commit
// then changes only the file's one data sector (its length in the directory entry stays the same),
// and a single-sector write is what an SD card does atomically: a power cut leaves the old file or
// the new one, never half of each. Rewriting through a mounted FAT (write a new file and rename it)
// would change the directory sector and the FAT as well, in two or three writes a cut can separate.
const AutobootSize = SectorSize

// Slot is one of the card's two slots.
type Slot struct {
	Name string // "a" or "b"
	Boot int    // its FAT boot partition: 2 or 3
	Root int    // its ext4 root partition: 5 or 6
}

// Slots are the card's slots, A first.
var Slots = []Slot{{"a", 2, 5}, {"b", 3, 6}}

// SlotNamed returns the slot called name ("a" or "b").
func SlotNamed(name string) (Slot, error) {
	for _, s := range Slots {
		if s.Name == name {
			return s, nil
		}
	}
	return Slot{}, fmt.Errorf("abslot: no slot %q: a card has slots \"a\" and \"b\"", name)
}

// Other is the slot that is not s.
func (s Slot) Other() Slot {
	if s.Name == "a" {
		return Slots[1]
	}
	return Slots[0]
}

func slotOfPartition(n int) (Slot, bool) {
	for _, s := range Slots {
		if s.Boot == n || s.Root == n {
			return s, true
		}
	}
	return Slot{}, false
}

// Autoboot renders autoboot.txt for committed: the firmware boots committed's boot partition, and,
// when the one-time tryboot flag is set, the other slot's (tryboot_a_b=1 makes it read that
// partition's config.txt rather than a tryboot.txt). The result is AutobootSize bytes.
func Autoboot(committed Slot) string {
	s := fmt.Sprintf("[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", committed.Boot, committed.Other().Boot)
	s += "# Written by drover, one sector long: a commit rewrites it in one write.\n"
	for left := AutobootSize - len(s); left > 0; left = AutobootSize - len(s) {
		if left < 2 {
			s += "\n"
			continue
		}
		s += "#" + strings.Repeat("-", min(62, left-2)) + "\n"
	}
	return s
}

// ParseAutoboot returns the boot partitions autoboot.txt names for a normal boot and for a trial
// (0 when its [tryboot] section names none), as the firmware reads them: [all] applies always,
// [tryboot] only in tryboot mode, the last value wins.
func ParseAutoboot(text string) (normal, trial int, err error) {
	section := "all"
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "boot_partition" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, 0, fmt.Errorf("abslot: autoboot.txt: boot_partition=%q is not a number", v)
		}
		switch section {
		case "all":
			normal = n
		case "tryboot":
			trial = n
		}
	}
	if normal == 0 {
		return 0, 0, fmt.Errorf("abslot: autoboot.txt names no boot_partition under [all]")
	}
	return normal, trial, nil
}

// FirmwareChoice is the boot partition the Pi's firmware boots from this autoboot.txt: the [tryboot]
// one when the one-time tryboot flag is set and the file names one, else the [all] one. An emulated
// Pi's launcher chooses the same way.
func FirmwareChoice(autoboot string, tryboot bool) (int, error) {
	normal, trial, err := ParseAutoboot(autoboot)
	if err != nil {
		return 0, err
	}
	if tryboot && trial != 0 {
		return trial, nil
	}
	return normal, nil
}

// fatFile is where a file of a FAT12/16 root directory keeps its data on the card.
type fatFile struct {
	dataOffset int64 // of its first cluster, from the start of the card
	size       int64
	cluster    int64 // cluster size in bytes
}

// findRootFile finds name (8.3, such as "AUTOBOOTTXT") in the root directory of the FAT12/16
// filesystem at ext on the card.
func findRootFile(r io.ReaderAt, ext Extent, name string) (fatFile, error) {
	bs := make([]byte, SectorSize)
	if _, err := r.ReadAt(bs, ext.Offset); err != nil {
		return fatFile{}, fmt.Errorf("abslot: reading the autoboot partition: %w", err)
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	fats := int64(bs[16])
	rootEntries := int64(binary.LittleEndian.Uint16(bs[17:]))
	fatSectors := int64(binary.LittleEndian.Uint16(bs[22:]))
	if bps != SectorSize || spc == 0 || rootEntries == 0 || fatSectors == 0 {
		return fatFile{}, fmt.Errorf("abslot: partition %d is not a FAT12/16 filesystem with %d-byte sectors", AutobootPartition, SectorSize)
	}
	rootStart := ext.Offset + (reserved+fats*fatSectors)*bps
	rootLen := rootEntries * 32
	dir := make([]byte, rootLen)
	if _, err := r.ReadAt(dir, rootStart); err != nil {
		return fatFile{}, fmt.Errorf("abslot: reading the autoboot partition's root directory: %w", err)
	}
	dataStart := rootStart + (rootLen+bps-1)/bps*bps
	for e := 0; e+32 <= len(dir); e += 32 {
		d := dir[e : e+32]
		if d[0] == 0 {
			break
		}
		if d[0] == 0xe5 || d[11] == 0x0f || d[11]&0x18 != 0 { // deleted, long name, volume label or directory
			continue
		}
		if !bytes.Equal(d[:11], []byte(name)) {
			continue
		}
		cl := int64(binary.LittleEndian.Uint16(d[26:]))
		if cl < 2 {
			return fatFile{}, fmt.Errorf("abslot: %s has no data cluster", name)
		}
		return fatFile{dataOffset: dataStart + (cl-2)*spc*bps, size: int64(binary.LittleEndian.Uint32(d[28:])), cluster: spc * bps}, nil
	}
	return fatFile{}, fmt.Errorf("abslot: no autoboot.txt in the root of partition %d", AutobootPartition)
}

const autobootName = "AUTOBOOTTXT"

// ReadAutoboot reads autoboot.txt from the card.
func ReadAutoboot(r io.ReaderAt, t Table) (string, error) {
	ext, ok := t.Partitions[AutobootPartition]
	if !ok {
		return "", fmt.Errorf("abslot: the card has no partition %d (autoboot)", AutobootPartition)
	}
	f, err := findRootFile(r, ext, autobootName)
	if err != nil {
		return "", err
	}
	if f.size > f.cluster {
		return "", fmt.Errorf("abslot: autoboot.txt is %d bytes, more than one cluster", f.size)
	}
	buf := make([]byte, f.size)
	if _, err := r.ReadAt(buf, f.dataOffset); err != nil {
		return "", fmt.Errorf("abslot: reading autoboot.txt: %w", err)
	}
	return string(buf), nil
}

// WriteAutoboot rewrites autoboot.txt in place with text (AutobootSize bytes, from Autoboot): one
// sector written and synced. It refuses a card whose autoboot.txt is not AutobootSize bytes long (a
// card made before the file was kept one sector long): rewriting it would also change its length.
func WriteAutoboot(f interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}, t Table, text string) error {
	if len(text) != AutobootSize {
		return fmt.Errorf("abslot: autoboot.txt must be %d bytes, got %d", AutobootSize, len(text))
	}
	ext, ok := t.Partitions[AutobootPartition]
	if !ok {
		return fmt.Errorf("abslot: the card has no partition %d (autoboot)", AutobootPartition)
	}
	ff, err := findRootFile(f, ext, autobootName)
	if err != nil {
		return err
	}
	if ff.size != AutobootSize {
		return fmt.Errorf("abslot: autoboot.txt is %d bytes, not %d: this card was made before drover kept it one sector long and cannot be committed in place; write the card again", ff.size, AutobootSize)
	}
	if _, err := f.WriteAt([]byte(text), ff.dataOffset); err != nil {
		return fmt.Errorf("abslot: writing autoboot.txt: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("abslot: syncing autoboot.txt: %w", err)
	}
	return nil
}
