package abslot

import (
	"encoding/binary"
	"fmt"
	"io"
)

// SectorSize is the card's logical sector: MBR addresses are in these.
const SectorSize = 512

// Extent is where a partition lies on the card, in bytes.
type Extent struct {
	Offset, Size int64
}

// Table is a card's MBR: its disk identifier (8 hex digits, the first half of every PARTUUID) and
// its partitions by number, logical ones (5 on) found through the chain of EBRs.
type Table struct {
	DiskID     string
	Partitions map[int]Extent
}

// ReadTable reads the MBR of the card r. It only reads.
func ReadTable(r io.ReaderAt) (Table, error) {
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return Table{}, fmt.Errorf("abslot: reading the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return Table{}, fmt.Errorf("abslot: no MBR signature (0x55aa) on the card: not a Pi card")
	}
	t := Table{DiskID: fmt.Sprintf("%08x", binary.LittleEndian.Uint32(mbr[440:])), Partitions: map[int]Extent{}}
	var ext int64 = -1
	for i := range 4 {
		typ, start, size := entry(mbr, i)
		if typ == 0 {
			continue
		}
		t.Partitions[i+1] = Extent{start * SectorSize, size * SectorSize}
		if typ == 0x05 || typ == 0x0f || typ == 0x85 {
			ext = start
		}
	}
	if ext < 0 {
		return t, nil
	}
	// Each EBR describes one logical partition (relative to the EBR) and the next EBR (relative to
	// the extended partition's start).
	ebr, n := ext, 5
	for range 128 {
		sec := make([]byte, SectorSize)
		if _, err := r.ReadAt(sec, ebr*SectorSize); err != nil {
			return Table{}, fmt.Errorf("abslot: reading the EBR of partition %d: %w", n, err)
		}
		if sec[510] != 0x55 || sec[511] != 0xaa {
			return Table{}, fmt.Errorf("abslot: the EBR of partition %d at sector %d has no signature", n, ebr)
		}
		if typ, start, size := entry(sec, 0); typ != 0 {
			t.Partitions[n] = Extent{(ebr + start) * SectorSize, size * SectorSize}
			n++
		}
		typ, next, _ := entry(sec, 1)
		if typ == 0 {
			return t, nil
		}
		ebr = ext + next
	}
	return Table{}, fmt.Errorf("abslot: more than 128 logical partitions: the EBR chain loops")
}

func entry(sec []byte, i int) (typ byte, start, size int64) {
	e := sec[446+16*i:]
	return e[4], int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
}
