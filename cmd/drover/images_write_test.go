package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
)

// seedCard puts a fake pi image with an SD card artifact (data, a zero run, data) in the catalog
// of state, with the given sha256 in its manifest ("" for the card's own); it returns the card.
func seedCard(t *testing.T, state, sum string) []byte {
	t.Helper()
	card := append(append(bytes.Repeat([]byte("card"), 1<<20), make([]byte, 9<<20)...), []byte("end of the card")...)
	if sum == "" {
		s := sha256.Sum256(card)
		sum = hex.EncodeToString(s[:])
	}
	id := "sha256:" + strings.Repeat("c", 64)
	st, err := images.OpenCatalog(state).Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "card.img"), card, 0o644); err != nil {
		t.Fatal(err)
	}
	m := &images.Manifest{Identity: id, Role: "pi", Arch: "arm64", Created: time.Now(), ArtifactSHA256: sum,
		Artifacts: []images.Artifact{{Format: images.CardFormat, File: "card.img", Length: int64(len(card)), SHA256: sum}},
		Card: &images.Card{DiskID: "4cae9fe2", DataPartition: 7, Bundle: "bundle",
			Slots: []images.CardSlot{{Name: "a", BootPartition: 2, RootPartition: 5, RootPARTUUID: "4cae9fe2-05"},
				{Name: "b", BootPartition: 3, RootPartition: 6, RootPARTUUID: "4cae9fe2-06"}},
			BundleParts: []images.BundlePart{{Role: "root", File: "root.ext4.gz", Size: 1 << 30, SHA256: strings.Repeat("e", 64)}}}}
	if err := st.Commit(m); err != nil {
		t.Fatal(err)
	}
	return card
}

func TestImagesWriteToAFile(t *testing.T) {
	state := t.TempDir()
	card := seedCard(t, state, "")
	out := filepath.Join(t.TempDir(), "card.img")
	if err := os.WriteFile(out, bytes.Repeat([]byte("old"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := drover(t, nil, "--state", state, "images", "write", "pi", out)
	if code != 0 || !strings.Contains(stdout, "read it back: sha256") || !strings.Contains(stderr, "(100%") {
		t.Fatalf("write: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, card) {
		t.Errorf("the file holds %d bytes that are not the card's %d (the old, longer content must be gone)", len(got), len(card))
	}
	code, stdout, _ = drover(t, nil, "--state", state, "images", "show", "pi")
	for _, want := range []string{"artifact   rpi-sd card.img", "slot       A: boot partition 2, root partition 5 (PARTUUID 4cae9fe2-05)",
		"slot       B: boot partition 3, root partition 6", "data       partition 7", "bundle     bundle/root.ext4.gz: slot root filesystem, 1.0 GiB"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("images show pi lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = drover(t, nil, "--state", state, "--output", "json", "images", "write", "pi", out)
	var rep writeReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || !rep.Verified || rep.Bytes != int64(len(card)) || rep.Format != images.CardFormat {
		t.Errorf("json write: exit %d, %+v\n%s", code, rep, stdout)
	}
}

func TestImagesWriteRefusesWhatDoesNotReadBack(t *testing.T) {
	state := t.TempDir()
	seedCard(t, state, strings.Repeat("0", 64))
	code, _, stderr := drover(t, nil, "--state", state, "images", "write", "pi", filepath.Join(t.TempDir(), "card.img"))
	if code == 0 || !strings.Contains(stderr, "reads back with sha256") {
		t.Errorf("a mismatching read-back: exit %d\n%s", code, stderr)
	}
	code, _, stderr = drover(t, nil, "--state", state, "images", "write", "pi", "/dev/null")
	if code == 0 || !strings.Contains(stderr, "neither a block device nor a regular file") {
		t.Errorf("a character device: exit %d\n%s", code, stderr)
	}
}

// fakeHost is a sysfs with one card, sdb (8:16, 64 MiB) with partitions sdb1 (8:17) and sdb2
// (8:18), and the system disk sda (8:0) with sda1 (8:1) holding /.
type fakeHost struct {
	hostBlock
	t *testing.T
}

func newFakeHost(t *testing.T) fakeHost {
	dir := t.TempDir()
	h := fakeHost{hostBlock{sys: filepath.Join(dir, "sys"), mountinfo: filepath.Join(dir, "mountinfo"), swaps: filepath.Join(dir, "swaps")}, t}
	h.disk("sda", "8:0", 1<<30, false, "sda1:8:1")
	h.disk("sdb", "8:16", 64<<20, true, "sdb1:8:17", "sdb2:8:18")
	h.write("mountinfo", "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n25 22 0:5 / /proc rw - proc proc rw\n")
	h.write("swaps", "Filename\tType\tSize\tUsed\tPriority\n")
	return h
}

func (h fakeHost) write(rel, content string) {
	p := filepath.Join(filepath.Dir(h.sys), rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h fakeHost) link(target, rel string) {
	p := filepath.Join(h.sys, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		h.t.Fatal(err)
	}
}

// disk lays a disk out as sysfs does: the device under devices/, block/NAME and class/block/NAME
// links to it, dev/block/MAJ:MIN links to it and to each partition.
func (h fakeHost) disk(name, dev string, size int64, removable bool, parts ...string) {
	devDir := "devices/virtual/block/" + name
	rem := "0"
	if removable {
		rem = "1"
	}
	h.write("sys/"+devDir+"/size", fmt.Sprint(size/512))
	h.write("sys/"+devDir+"/removable", rem)
	h.write("sys/"+devDir+"/dev", dev)
	h.link("../"+devDir, "block/"+name)
	h.link("../../"+devDir, "class/block/"+name)
	h.link("../../"+devDir, "dev/block/"+dev)
	for _, p := range parts {
		f := strings.SplitN(p, ":", 2)
		h.write("sys/"+devDir+"/"+f[0]+"/dev", f[1])
		h.write("sys/"+devDir+"/"+f[0]+"/partition", "1")
		h.link("../../"+devDir+"/"+f[0], "class/block/"+f[0])
		h.link("../../"+devDir+"/"+f[0], "dev/block/"+f[1])
	}
}

func rdev(major, minor uint64) uint64 { return major<<8 | minor }

func TestWriteTargetChecks(t *testing.T) {
	const card = 32 << 20
	h := newFakeHost(t)
	d, err := h.checkTarget("/dev/sdb", rdev(8, 16), card, false)
	if err != nil || d.name != "sdb" || d.size != 64<<20 || len(d.parts) != 2 {
		t.Fatalf("a removable, unmounted card: %+v, %v", d, err)
	}
	refusals := []struct {
		what   string
		setup  func(h fakeHost)
		rdev   uint64
		length int64
		force  bool
		want   string
	}{
		{"a partition", nil, rdev(8, 17), card, true, "sdb1 is a partition; name the whole card (/dev/sdb)"},
		{"the system disk", nil, rdev(8, 0), card, true, "holds the running system's root filesystem"},
		{"the system disk, not forced", nil, rdev(8, 0), card, false, "holds the running system's root filesystem"},
		{"a mounted partition", func(h fakeHost) {
			h.write("mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 8:18 / /media/pi/root rw - ext4 /dev/sdb2 rw\n")
		}, rdev(8, 16), card, true, "is mounted: sdb2 on /media/pi/root"},
		{"a held partition", func(h fakeHost) {
			h.write("sys/devices/virtual/block/sdb/sdb1/holders/dm-0", "")
		}, rdev(8, 16), card, true, "sdb1 is held by dm-0"},
		{"swap", func(h fakeHost) {
			h.write("swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2 partition 1024 0 -2\n")
		}, rdev(8, 16), card, true, "in use as swap (/dev/sdb2)"},
		{"a card too small", nil, rdev(8, 16), 128 << 20, true, "holds 67108864 bytes, the image 134217728"},
		{"fixed media", func(h fakeHost) { h.write("sys/devices/virtual/block/sdb/removable", "0") }, rdev(8, 16), card, false, "not removable"},
		{"a device sysfs does not know", nil, rdev(9, 9), card, true, "not in"},
	}
	for _, r := range refusals {
		h := newFakeHost(t)
		if r.setup != nil {
			r.setup(h)
		}
		_, err := h.checkTarget("/dev/x", r.rdev, r.length, r.force)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: %v, want %q", r.what, err, r.want)
		}
		if errors.Is(err, errNotRemovable) != (r.what == "fixed media") {
			t.Errorf("%s: only fixed media is a refusal --force overrides: %v", r.what, err)
		}
	}
	h.write("sys/devices/virtual/block/sdb/removable", "0")
	if _, err := h.checkTarget("/dev/sdb", rdev(8, 16), card, true); err != nil {
		t.Errorf("fixed media with --force: %v", err)
	}
}
