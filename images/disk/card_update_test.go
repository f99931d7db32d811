package disk

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/internal/abslot"
	"github.com/drover-dev/drover/internal/abslot/abslottest"
)

// TestCardUpdatesFromTheNextBundle takes a card this package made and the bundle of the next build
// (one file added) through an update as drover-boot runs it: slot b written from the bundle (its
// own boot image, the shared root), checked, booted once on trial, committed; the firmware's choice
// is played from the card's own autoboot.txt (the builder's FAT16, found and rewritten in place).
func TestCardUpdatesFromTheNextBundle(t *testing.T) {
	requireCardTools(t)
	dir := t.TempDir()
	v1, err := AssembleCard(t.Context(), testCardSpec(fakePiTree(t), dir))
	if err != nil {
		t.Fatal(err)
	}
	tree2 := fakePiTree(t)
	writeFile(t, filepath.Join(tree2, "etc/motd"), "version 2\n")
	spec2 := testCardSpec(tree2, t.TempDir())
	v2, err := AssembleCard(t.Context(), spec2)
	if err != nil {
		t.Fatal(err)
	}
	fw := abslottest.Firmware{Card: v1.Path, TrybootPort: filepath.Join(dir, "tryboot"), Cmdline: filepath.Join(dir, "cmdline")}
	if got := fw.Boot(t); got != "a" {
		t.Fatalf("a new card boots %s", got)
	}
	d := abslot.Device{Disk: v1.Path, Cmdline: fw.Cmdline, TrybootPort: fw.TrybootPort, VCIO: filepath.Join(dir, "no-vcio")}

	toDev, fromSender := io.Pipe()
	toSender, fromDev := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := d.Receive("b", toDev, fromDev)
		fromDev.CloseWithError(err)
		errc <- err
	}()
	st, err := abslot.Send(spec2.BundleDir, "b", fromSender, toSender)
	fromSender.Close()
	if derr := <-errc; derr != nil {
		t.Fatal(derr)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Result.Parts {
		want := ""
		for _, bp := range v2.Bundle.Parts {
			if bp.Role == p.Role && (bp.Slot == "" || bp.Slot == "b") {
				want = bp.SHA256
			}
		}
		if p.SHA256 != want {
			t.Errorf("slot b's %s reads back %s, the bundle's is %s", p.Role, p.SHA256, want)
		}
	}
	if st.Bytes*10 > st.SlotBytes {
		t.Errorf("sent %d of %d bytes for a one-file change, want at most 10%%", st.Bytes, st.SlotBytes)
	}
	// Slot b's own cmdline.txt names its own root: the firmware boots b's partition and the
	// kernel's root is partition 6.
	if err := d.Trial("b"); err != nil {
		t.Fatal(err)
	}
	if got := fw.Boot(t); got != "b" {
		t.Fatalf("the trial booted %s", got)
	}
	if err := d.Commit("b"); err != nil {
		t.Fatal(err)
	}
	if got := fw.Boot(t); got != "b" {
		t.Fatalf("after commit, booted %s", got)
	}
	part := func(n int) (int64, int64) {
		tab := readTable(t, v1.Path)
		e := tab.Partitions[n]
		return e.Offset, e.Size
	}
	if got := fatRead(t, v1.Path, part, 1, "autoboot.txt"); got != abslot.Autoboot(abslot.Slots[1]) {
		t.Errorf("autoboot.txt after commit, as mtools reads it:\n%q", got)
	}
	if got := fatRead(t, v1.Path, part, 3, "cmdline.txt"); !strings.Contains(got, "root=PARTUUID="+v1.DiskID+"-06") {
		t.Errorf("slot b's cmdline.txt: %q", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTable(t *testing.T, card string) abslot.Table {
	t.Helper()
	f, err := os.Open(card)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := abslot.ReadTable(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
