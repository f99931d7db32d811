package abslot

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Default paths of the device side.
const (
	DefaultCmdline = "/proc/cmdline"
	DefaultBootID  = "/proc/sys/kernel/random/boot_id"
	DefaultVCIO    = "/dev/vcio"
	// DefaultTrybootPort is the stand-in for the firmware mailbox on a machine without /dev/vcio:
	// a virtio-serial port an emulated Pi's launcher reads; "tryboot\n" written to it arms the
	// one-time trial boot as the mailbox's tag does on a Pi.
	DefaultTrybootPort = "/dev/virtio-ports/org.drover.tryboot"
)

// Device is the device side of slot updates: the card and how the running system is found.
// Its methods are not safe to run concurrently on one card (drover holds the role's lock while it
// drives them).
type Device struct {
	// Disk is the card: a block device such as /dev/mmcblk0, or an image file (tests, the
	// DROVER_BOOT_DISK override). "" means the disk that holds the running root.
	Disk string
	// Cmdline is the running kernel's command line, whose root=PARTUUID= says which slot runs.
	Cmdline string
	// VCIO is the firmware mailbox; TrybootPort the stand-in used when VCIO does not exist.
	VCIO, TrybootPort string
	// BootID is the file with the kernel's random ID of this boot, which tells drover that the
	// device answering after a reboot did boot again.
	BootID string
}

// Status is what a card says about its slots.
type Status struct {
	Disk      string       `json:"disk"`
	DiskID    string       `json:"disk_id"`
	Committed string       `json:"committed"` // the slot a normal boot starts
	Booted    string       `json:"booted"`    // the slot running now; "" when the root is not on this card
	Trial     bool         `json:"trial"`     // Booted is not Committed: a one-time trial runs
	BootID    string       `json:"boot_id"`   // the kernel's ID of this boot: a new one after every boot
	Slots     []SlotStatus `json:"slots"`
}

// SlotStatus is one slot's partitions.
type SlotStatus struct {
	Name     string `json:"name"`
	Boot     int    `json:"boot_partition"`
	Root     int    `json:"root_partition"`
	BootSize int64  `json:"boot_size"`
	RootSize int64  `json:"root_size"`
}

func (d Device) disk() (string, error) {
	if d.Disk != "" {
		return d.Disk, nil
	}
	return RootDisk()
}

// RootDisk is the whole disk holding the running root filesystem, found through sysfs: the root's
// device number names a partition whose parent directory is the disk.
func RootDisk() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return "", fmt.Errorf("abslot: stat /: %w", err)
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return "", fmt.Errorf("abslot: finding the root's disk: %w", err)
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err != nil {
		return "", fmt.Errorf("abslot: the root (%s) is not on a partition of a disk", filepath.Base(real))
	}
	return "/dev/" + filepath.Base(filepath.Dir(real)), nil
}

func (d Device) open(write bool) (*os.File, string, Table, error) {
	path, err := d.disk()
	if err != nil {
		return nil, "", Table{}, err
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, "", Table{}, fmt.Errorf("abslot: opening the card: %w", err)
	}
	t, err := ReadTable(f)
	if err != nil {
		f.Close()
		return nil, "", Table{}, err
	}
	for _, s := range Slots {
		for _, n := range []int{AutobootPartition, s.Boot, s.Root} {
			if _, ok := t.Partitions[n]; !ok {
				f.Close()
				return nil, "", Table{}, fmt.Errorf("abslot: %s has no partition %d: not an A/B card", path, n)
			}
		}
	}
	return f, path, t, nil
}

// openSlot opens the card for writing and reads its status, for an operation on slot slotName.
// The caller closes the file.
func (d Device) openSlot(slotName string) (Slot, *os.File, Table, Status, error) {
	slot, err := SlotNamed(slotName)
	if err != nil {
		return Slot{}, nil, Table{}, Status{}, err
	}
	f, path, t, err := d.open(true)
	if err != nil {
		return Slot{}, nil, Table{}, Status{}, err
	}
	st, err := d.status(f, path, t)
	if err != nil {
		f.Close()
		return Slot{}, nil, Table{}, Status{}, err
	}
	return slot, f, t, st, nil
}

// Status reads the card and the running kernel's command line. It only reads.
func (d Device) Status() (Status, error) {
	f, path, t, err := d.open(false)
	if err != nil {
		return Status{}, err
	}
	defer f.Close()
	return d.status(f, path, t)
}

func (d Device) status(f io.ReaderAt, path string, t Table) (Status, error) {
	text, err := ReadAutoboot(f, t)
	if err != nil {
		return Status{}, err
	}
	normal, _, err := ParseAutoboot(text)
	if err != nil {
		return Status{}, err
	}
	committed, ok := slotOfPartition(normal)
	if !ok || committed.Boot != normal {
		return Status{}, fmt.Errorf("abslot: autoboot.txt boots partition %d, which is no slot's boot partition (2 or 3)", normal)
	}
	st := Status{Disk: path, DiskID: t.DiskID, Committed: committed.Name}
	if st.Booted, err = d.booted(t.DiskID); err != nil {
		return Status{}, err
	}
	st.Trial = st.Booted != "" && st.Booted != st.Committed
	st.BootID = d.bootID()
	for _, s := range Slots {
		st.Slots = append(st.Slots, SlotStatus{Name: s.Name, Boot: s.Boot, Root: s.Root,
			BootSize: t.Partitions[s.Boot].Size, RootSize: t.Partitions[s.Root].Size})
	}
	return st, nil
}

// bootID is the running kernel's boot ID, "" when it cannot be read (the status says so by leaving
// it empty, and drover then refuses to take an answer for a boot).
func (d Device) bootID() string {
	path := d.BootID
	if path == "" {
		path = DefaultBootID
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// booted reads root=PARTUUID=DISKID-NN from the command line.
func (d Device) booted(diskID string) (string, error) {
	path := d.Cmdline
	if path == "" {
		path = DefaultCmdline
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("abslot: reading the kernel command line: %w", err)
	}
	for _, w := range strings.Fields(string(data)) {
		v, ok := strings.CutPrefix(w, "root=PARTUUID=")
		if !ok {
			continue
		}
		id, num, ok := strings.Cut(strings.ToLower(v), "-")
		if !ok || id != diskID {
			return "", nil
		}
		var n int
		if _, err := fmt.Sscanf(num, "%x", &n); err != nil {
			return "", nil
		}
		if s, ok := slotOfPartition(n); ok && s.Root == n {
			return s.Name, nil
		}
	}
	return "", nil
}

// Receive is the device's half of the write protocol (proto.go) for slot: it reads the request (which
// must name slot too) from in,
// answers the blocks it needs on out, writes them into slot's partitions, syncs, reads the written
// blocks back from the card, and answers the result. It refuses the slot that runs or is committed.
// Rerunning it after a failure or a power cut completes the slot.
//
// Every block of the slot is checked against the bundle's hash of it: the ones left alone when they
// are read (from the card, not the page cache) before the write, the written ones when they are
// read back after the sync. That is the part's whole sha256 (the bundle's block hashes are of the
// same bytes), without reading the slot a second time: on the Pi, and even more under emulation,
// a pass over the slot is most of an update's time.
func (d Device) Receive(slotName string, in io.Reader, out io.Writer) error {
	rd := bufio.NewReaderSize(in, 1<<20)
	var req WriteRequest
	if err := readLine(rd, &req); err != nil {
		return fmt.Errorf("abslot: reading the request: %w", err)
	}
	if req.Slot != slotName {
		return fmt.Errorf("abslot: the request writes slot %q, the command slot %q", req.Slot, slotName)
	}
	slot, f, t, st, err := d.openSlot(slotName)
	if err != nil {
		return err
	}
	defer f.Close()
	if st.Booted == "" {
		return fmt.Errorf("abslot: the running root is not on %s (the kernel's root=PARTUUID= names no slot of disk %s): refusing to write a slot of a card that may be in use", st.Disk, t.DiskID)
	}
	if slot.Name == st.Booted || slot.Name == st.Committed {
		return fmt.Errorf("abslot: slot %s is the one running or committed (running %s, committed %s): only the other slot is written", slot.Name, st.Booted, st.Committed)
	}
	if req.BlockSize <= 0 || len(req.Parts) == 0 {
		return fmt.Errorf("abslot: request with block size %d and %d parts", req.BlockSize, len(req.Parts))
	}
	exts := make([]Extent, len(req.Parts))
	parts := make([]int, len(req.Parts))
	roles := map[string]bool{}
	for i, p := range req.Parts {
		if p.Slot != "" && p.Slot != slot.Name {
			return fmt.Errorf("abslot: the request's %s image is for slot %s, not %s", p.Role, p.Slot, slot.Name)
		}
		if roles[p.Role] {
			return fmt.Errorf("abslot: the request has two %s images", p.Role)
		}
		roles[p.Role] = true
		switch p.Role {
		case "boot":
			parts[i] = slot.Boot
		case "root":
			parts[i] = slot.Root
		default:
			return fmt.Errorf("abslot: part role %q: want \"boot\" or \"root\"", p.Role)
		}
		exts[i] = t.Partitions[parts[i]]
		if p.Size > exts[i].Size {
			return fmt.Errorf("abslot: the %s image is %d bytes, slot %s's partition %d only %d: the card's layout is too small for this image; write a new card", p.Role, p.Size, slot.Name, parts[i], exts[i].Size)
		}
		if int64(len(p.Blocks)) != blockCount(p.Size, req.BlockSize) {
			return fmt.Errorf("abslot: part %s has %d block hashes for %d bytes", p.Role, len(p.Blocks), p.Size)
		}
	}
	t0 := time.Now()
	// What the card holds, not what the page cache remembers of it.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	need := Need{Blocks: make([][]int, len(req.Parts))}
	buf := make([]byte, req.BlockSize)
	for i, p := range req.Parts {
		need.Blocks[i] = []int{}
		for b := range p.Blocks {
			n := min(int64(req.BlockSize), p.Size-int64(b)*int64(req.BlockSize))
			if _, err := f.ReadAt(buf[:n], exts[i].Offset+int64(b)*int64(req.BlockSize)); err != nil {
				return fmt.Errorf("abslot: reading block %d of partition %d: %w", b, parts[i], err)
			}
			if sum := sha256.Sum256(buf[:n]); hex.EncodeToString(sum[:]) != p.Blocks[b] {
				need.Blocks[i] = append(need.Blocks[i], b)
			}
		}
	}
	if err := writeLine(out, need); err != nil {
		return err
	}
	// The running slot's same partitions, indexed by chunk for the parts with blocks to send.
	running, _ := SlotNamed(st.Booted)
	srcs := make([]Extent, len(req.Parts))
	idx := Index{Chunks: make([]int, len(req.Parts))}
	for i, p := range req.Parts {
		srcs[i] = t.Partitions[running.Root]
		if p.Role == "boot" {
			srcs[i] = t.Partitions[running.Boot]
		}
		if len(need.Blocks[i]) > 0 {
			idx.Chunks[i] = int(min(srcs[i].Size, p.Size) / ChunkSize)
		}
	}
	if err := writeLine(out, idx); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	for i := range req.Parts {
		if err := hashChunks(f, srcs[i].Offset, idx.Chunks[i], bw); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("abslot: answering: %w", err)
	}
	res := WriteResult{Slot: slot.Name, HashSeconds: time.Since(t0).Seconds()}
	t1 := time.Now()
	// A block with a chunk that changed under the copy is asked for again, as data only.
	again := Need{Blocks: make([][]int, len(req.Parts))}
	receive := func(i, b, chunks int) (stale bool, err error) {
		p := req.Parts[i]
		n := min(int64(req.BlockSize), p.Size-int64(b)*int64(req.BlockSize))
		err = readBlock(rd, buf[:n], f, srcs[i].Offset, chunks)
		if errors.Is(err, errStaleChunk) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("abslot: receiving block %d of the %s image: %w", b, p.Role, err)
		}
		if sum := sha256.Sum256(buf[:n]); hex.EncodeToString(sum[:]) != p.Blocks[b] {
			return false, fmt.Errorf("abslot: block %d of the %s image arrived with sha256 %x, the bundle says %s", b, p.Role, sum, p.Blocks[b])
		}
		if _, err := f.WriteAt(buf[:n], exts[i].Offset+int64(b)*int64(req.BlockSize)); err != nil {
			return false, fmt.Errorf("abslot: writing block %d of partition %d: %w", b, parts[i], err)
		}
		return false, nil
	}
	for i := range req.Parts {
		again.Blocks[i] = []int{}
		for _, b := range need.Blocks[i] {
			stale, err := receive(i, b, idx.Chunks[i])
			if err != nil {
				return err
			}
			if stale {
				again.Blocks[i] = append(again.Blocks[i], b)
				res.Again++
			}
		}
	}
	if err := writeLine(out, again); err != nil {
		return err
	}
	for i := range req.Parts {
		for _, b := range again.Blocks[i] {
			// No chunks to refer to: a reference now is the sender's error.
			if _, err := receive(i, b, 0); err != nil {
				return err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("abslot: syncing the card: %w", err)
	}
	res.WriteSeconds = time.Since(t1).Seconds()
	t2 := time.Now()
	// Read back what the card holds, not what the page cache remembers of the writes.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	for i, p := range req.Parts {
		for _, b := range need.Blocks[i] {
			n := min(int64(req.BlockSize), p.Size-int64(b)*int64(req.BlockSize))
			if _, err := f.ReadAt(buf[:n], exts[i].Offset+int64(b)*int64(req.BlockSize)); err != nil {
				return fmt.Errorf("abslot: reading back block %d of partition %d: %w", b, parts[i], err)
			}
			if sum := sha256.Sum256(buf[:n]); hex.EncodeToString(sum[:]) != p.Blocks[b] {
				return fmt.Errorf("abslot: slot %s's partition %d reads back block %d with sha256 %x, the bundle's %s image has %s: the card may be failing", slot.Name, parts[i], b, sum, p.Role, p.Blocks[b])
			}
		}
		// Every block now matches the bundle's hash of it, so the part is the bundle's image.
		res.Parts = append(res.Parts, PartResult{Role: p.Role, Partition: parts[i], Blocks: len(p.Blocks), Written: len(need.Blocks[i]), SHA256: p.SHA256})
	}
	res.VerifySeconds = time.Since(t2).Seconds()
	return writeLine(out, res)
}

func writeLine(w io.Writer, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("abslot: answering: %w", err)
	}
	return nil
}

// Trial arms a one-time trial boot of slot at the next reboot: autoboot.txt's [tryboot] section
// names slot (a normal boot still starts the committed one), then the firmware's tryboot flag is set.
// It refuses the committed slot. Idempotent; a reboot that is not a trial clears the flag.
func (d Device) Trial(slotName string) error {
	slot, f, t, st, err := d.openSlot(slotName)
	if err != nil {
		return err
	}
	defer f.Close()
	if st.Committed == slot.Name {
		return fmt.Errorf("abslot: slot %s is the committed one: a trial boots the other slot", slot.Name)
	}
	committed, _ := SlotNamed(st.Committed)
	if err := d.rewrite(f, t, Autoboot(committed)); err != nil {
		return err
	}
	return d.armTryboot()
}

// Commit makes slot the one a normal boot starts. Only the slot that runs can be committed (it is
// the one whose health was checked); committing the committed slot does nothing.
func (d Device) Commit(slotName string) error {
	slot, f, t, st, err := d.openSlot(slotName)
	if err != nil {
		return err
	}
	defer f.Close()
	if st.Committed == slot.Name {
		return nil
	}
	if st.Booted != slot.Name {
		return fmt.Errorf("abslot: slot %s does not run (running %q): only the slot that booted and passed its checks is committed", slot.Name, st.Booted)
	}
	return d.rewrite(f, t, Autoboot(slot))
}

// rewrite writes autoboot.txt when it differs (so a repeated call writes nothing).
func (d Device) rewrite(f *os.File, t Table, text string) error {
	cur, err := ReadAutoboot(f, t)
	if err != nil {
		return err
	}
	if cur == text {
		return nil
	}
	return WriteAutoboot(f, t, text)
}

// armTryboot sets the firmware's one-time tryboot flag through the mailbox, or through the
// stand-in port when there is no mailbox.
func (d Device) armTryboot() error {
	vcio := d.VCIO
	if vcio == "" {
		vcio = DefaultVCIO
	}
	if _, err := os.Stat(vcio); err == nil {
		return mailboxTryboot(vcio)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("abslot: %w", err)
	}
	port := d.TrybootPort
	if port == "" {
		port = DefaultTrybootPort
	}
	f, err := os.OpenFile(port, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("abslot: arming the trial boot: no firmware mailbox (%s) and no stand-in port: %w", vcio, err)
	}
	defer f.Close()
	if _, err := f.WriteString("tryboot\n"); err != nil {
		return fmt.Errorf("abslot: arming the trial boot through %s: %w", port, err)
	}
	return f.Close()
}
