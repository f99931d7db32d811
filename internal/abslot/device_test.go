package abslot_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/internal/abslot"
	"github.com/drover-dev/drover/internal/abslot/abslottest"
)

// testDevice is a card file committed to slot a, running slot a, with a bundle of a root that
// differs from it by one file.
func testDevice(t *testing.T) (abslot.Device, abslottest.Firmware, string, *abslot.Bundle) {
	abslottest.RequireTools(t)
	dir := t.TempDir()
	files := map[string]string{"etc/hostname": "pi\n", "usr/share/big": strings.Repeat("x", 3<<20), "boot/config.txt": "arm_64bit=1\n"}
	a := abslottest.MakeSlot(t, filepath.Join(dir, "a"), files)
	card := filepath.Join(dir, "card.img")
	abslottest.MakeCard(t, card, a)
	files["etc/motd"] = "version 2\n"
	b := abslottest.MakeSlot(t, filepath.Join(dir, "b"), files)
	bundleDir := filepath.Join(dir, "bundle")
	bundle := abslottest.MakeBundle(t, bundleDir, b)
	fw := abslottest.Firmware{Card: card, TrybootPort: filepath.Join(dir, "tryboot"), Cmdline: filepath.Join(dir, "cmdline")}
	d := abslot.Device{Disk: card, Cmdline: fw.Cmdline, TrybootPort: fw.TrybootPort, VCIO: filepath.Join(dir, "no-vcio")}
	if got := fw.Boot(t); got != "a" {
		t.Fatalf("a new card boots slot %s, want a", got)
	}
	return d, fw, bundleDir, bundle
}

// write runs both halves of the protocol through pipes, as SSH would carry them.
func write(t *testing.T, d abslot.Device, bundleDir, slot string) (abslot.SendStats, error) {
	toDev, fromSender := io.Pipe()
	toSender, fromDev := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := d.Receive(slot, toDev, fromDev)
		toDev.CloseWithError(io.ErrClosedPipe)
		fromDev.CloseWithError(err)
		errc <- err
	}()
	st, err := abslot.Send(bundleDir, slot, fromSender, toSender)
	fromSender.Close()
	if derr := <-errc; derr != nil {
		return st, derr
	}
	return st, err
}

func TestUpdateTrialCommit(t *testing.T) {
	d, fw, bundleDir, bundle := testDevice(t)
	if _, err := write(t, d, bundleDir, "a"); err == nil || !strings.Contains(err.Error(), "running or committed") {
		t.Fatalf("writing the running slot: %v, want a refusal", err)
	}
	st, err := write(t, d, bundleDir, "b")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range bundle.Parts {
		total += len(p.Blocks)
	}
	// A file added shifts what follows it; the chunks found in the running slot go as references.
	t.Logf("sent %d of %d blocks, %d of %d bytes, received %d", st.Blocks, total, st.Bytes, st.SlotBytes, st.Received)
	if st.Blocks == 0 || st.Bytes*100 > st.SlotBytes {
		t.Errorf("sent %d of %d blocks (%d of %d bytes) for a one-file change, want at most 1%%", st.Blocks, total, st.Bytes, st.SlotBytes)
	}
	for i, p := range st.Result.Parts {
		if p.SHA256 != bundle.Parts[i].SHA256 {
			t.Errorf("part %s reads back %s, want %s", p.Role, p.SHA256, bundle.Parts[i].SHA256)
		}
	}
	// A second write finds nothing to send.
	again, err := write(t, d, bundleDir, "b")
	if err != nil || again.Blocks != 0 {
		t.Fatalf("rewrite sent %d blocks, err %v; want 0", again.Blocks, err)
	}
	// A reboot without a trial stays on a; commit of b is refused while a runs.
	if got := fw.Boot(t); got != "a" {
		t.Fatalf("unarmed reboot booted %s", got)
	}
	if err := d.Commit("b"); err == nil {
		t.Fatal("committing b while a runs was accepted")
	}
	if err := d.Trial("a"); err == nil {
		t.Fatal("a trial of the committed slot was accepted")
	}
	if err := d.Trial("b"); err != nil {
		t.Fatal(err)
	}
	if got := fw.Boot(t); got != "b" {
		t.Fatalf("armed reboot booted %s, want b", got)
	}
	s, err := d.Status()
	if err != nil || s.Booted != "b" || s.Committed != "a" || !s.Trial {
		t.Fatalf("status on trial: %+v %v", s, err)
	}
	// The trial is one-time: a reboot (a failed check, a watchdog) goes back to a.
	if got := fw.Boot(t); got != "a" {
		t.Fatalf("second reboot after a trial booted %s, want a (committed)", got)
	}
	if err := d.Trial("b"); err != nil {
		t.Fatal(err)
	}
	fw.Boot(t)
	if err := d.Commit("b"); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit("b"); err != nil {
		t.Fatalf("commit again: %v", err)
	}
	for range 2 {
		if got := fw.Boot(t); got != "b" {
			t.Fatalf("after commit, reboot booted %s, want b", got)
		}
	}
	s, err = d.Status()
	if err != nil || s.Committed != "b" || s.Trial {
		t.Fatalf("status after commit: %+v %v", s, err)
	}
	// Now a is the other slot and may be written; b may not.
	if _, err := write(t, d, bundleDir, "b"); err == nil {
		t.Fatal("writing the committed slot was accepted")
	}
}

func TestPowerCutDuringWriteLeavesTheCommittedSlot(t *testing.T) {
	d, fw, bundleDir, _ := testDevice(t)
	// Scribble over slot b's root as a cut mid-write would leave it.
	f, err := os.OpenFile(d.Disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := abslot.ReadTable(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("cut", 100000)), tab.Partitions[6].Offset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := fw.Boot(t); got != "a" {
		t.Fatalf("after a cut, booted %s", got)
	}
	st, err := write(t, d, bundleDir, "b")
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks == 0 {
		t.Fatal("the rerun sent nothing to repair the scribbled blocks")
	}
}

func TestAutobootIsOneSector(t *testing.T) {
	for _, s := range abslot.Slots {
		text := abslot.Autoboot(s)
		if len(text) != abslot.AutobootSize {
			t.Fatalf("autoboot for %s is %d bytes", s.Name, len(text))
		}
		for _, line := range strings.Split(text, "\n") {
			if len(line) > 80 {
				t.Errorf("line of %d characters: %q", len(line), line)
			}
		}
		for tryboot, want := range map[bool]int{false: s.Boot, true: s.Other().Boot} {
			got, err := abslot.FirmwareChoice(text, tryboot)
			if err != nil || got != want {
				t.Errorf("slot %s tryboot=%v boots %d (%v), want %d", s.Name, tryboot, got, err, want)
			}
		}
	}
}

func TestStaleChunkReferenceIsSentAgain(t *testing.T) {
	d, _, bundleDir, bundle := testDevice(t)
	// Between the index and the copy, the running slot's root changes (it is mounted and in use):
	// every chunk the sender refers to is stale.
	toDev, fromSender := io.Pipe()
	toSender, fromDev := io.Pipe()
	errc := make(chan error, 1)
	scribble := func() {
		f, err := os.OpenFile(d.Disk, os.O_RDWR, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		tab, _ := abslot.ReadTable(f)
		zero := make([]byte, tab.Partitions[5].Size)
		for i := range zero {
			zero[i] = 0x5a
		}
		_, _ = f.WriteAt(zero, tab.Partitions[5].Offset)
	}
	go func() {
		err := d.Receive("b", &onSecondRead{r: toDev, hook: scribble}, fromDev)
		toDev.CloseWithError(io.ErrClosedPipe)
		fromDev.CloseWithError(err)
		errc <- err
	}()
	st, err := abslot.Send(bundleDir, "b", fromSender, toSender)
	fromSender.Close()
	if derr := <-errc; derr != nil || err != nil {
		t.Fatalf("a write whose references went stale: device %v, sender %v; want the blocks sent again", derr, err)
	}
	if st.Result.Again == 0 {
		t.Fatalf("no block was sent again (%d blocks, %d bytes): the scribble did not hit a referenced chunk", st.Blocks, st.Bytes)
	}
	t.Logf("%d blocks, %d of them again, %d bytes", st.Blocks, st.Result.Again, st.Bytes)
	for i, p := range st.Result.Parts {
		if p.SHA256 != bundle.Parts[i].SHA256 {
			t.Errorf("part %s reads back %s, want %s", p.Role, p.SHA256, bundle.Parts[i].SHA256)
		}
	}
	if again, err := write(t, d, bundleDir, "b"); err != nil || again.Blocks != 0 {
		t.Fatalf("a rewrite sent %d blocks, err %v; want 0: the slot is not the bundle's", again.Blocks, err)
	}
}

// onSecondRead runs hook before the device's second read of its input: the first read is the
// request; the second waits for the blocks, which come after the device sent its index.
type onSecondRead struct {
	r     io.Reader
	hook  func()
	reads int
}

func (o *onSecondRead) Read(p []byte) (int, error) {
	if o.reads++; o.reads == 2 {
		o.hook()
	}
	return o.r.Read(p)
}
