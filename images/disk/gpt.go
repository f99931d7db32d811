package disk

import (
	"context"
	"fmt"
	"strings"
)

const (
	sectorSize = 512
	mib        = 1 << 20

	// Partitions start and end on MiB boundaries, which every disk and
	// cloud volume handles well. The MiB after the root partition holds
	// the 33-sector backup GPT and keeps the disk size a whole MiB.
	partAlign = mib

	// espType is the UEFI System Partition. The root partition's type
	// depends on the architecture: see arch.rootType.
	espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
)

// layout is where everything goes on the disk, in bytes.
type layout struct {
	diskGUID, espGUID, rootGUID uuid
	rootType                    string
	// biosBootable marks the ESP LegacyBIOSBootable for gptmbr.bin.
	biosBootable bool

	espStart, espSize   int64
	rootStart, rootSize int64
	total               int64
}

// newLayout places the ESP first (so its VBR is what gptmbr.bin chains to
// and the root partition can be grown in place at the end of the disk) and
// the root partition right after it. Sizes must be whole MiB.
func newLayout(a arch, root uuid, espSize, rootSize int64) layout {
	l := layout{
		diskGUID:     root.derive("gpt-disk"),
		espGUID:      root.derive("gpt-esp"),
		rootGUID:     root.derive("gpt-root"),
		rootType:     a.rootType,
		biosBootable: a.bios,
		espStart:     partAlign,
		espSize:      espSize,
		rootSize:     rootSize,
	}
	l.rootStart = l.espStart + l.espSize
	l.total = l.rootStart + l.rootSize + partAlign
	return l
}

// sfdiskScript renders the partition table as sfdisk input. Every GUID is
// given so the table is the same on every run.
func (l layout) sfdiskScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\n")
	fmt.Fprintf(&b, "label-id: %s\n", strings.ToUpper(l.diskGUID.String()))
	fmt.Fprintf(&b, "unit: sectors\n")
	fmt.Fprintf(&b, "first-lba: %d\n", partAlign/sectorSize)
	fmt.Fprintf(&b, "sector-size: %d\n\n", sectorSize)
	attrs := ""
	if l.biosBootable {
		attrs = `, attrs="LegacyBIOSBootable"`
	}
	fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"ESP\"%s\n",
		l.espStart/sectorSize, l.espSize/sectorSize, espType, strings.ToUpper(l.espGUID.String()), attrs)
	fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"root\"\n",
		l.rootStart/sectorSize, l.rootSize/sectorSize, l.rootType, strings.ToUpper(l.rootGUID.String()))
	return b.String()
}

// writePartitionTable writes the protective MBR, the GPT and its backup
// into the plain file at path, which must already be l.total bytes long.
// sfdisk works on a file like on a device, so no loop device is needed.
func writePartitionTable(ctx context.Context, path string, l layout) error {
	_, err := run(ctx, command{
		step:  "partition table",
		args:  []string{"sfdisk", "--no-reread", "--no-tell-kernel", "--quiet", path},
		stdin: strings.NewReader(l.sfdiskScript()),
	})
	return err
}
