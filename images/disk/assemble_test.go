package disk

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTools skips tests that run the real tools where they are missing;
// the e2e tests fail instead.
func requireTools(t *testing.T) {
	t.Helper()
	if err := checkTools(RequiredTools()); err != nil {
		t.Skip(err)
	}
}

// fakeTree is not bootable, but has what Assemble needs and the awkward
// names, links and fresh timestamps a real tree has.
func fakeTree(t *testing.T) string {
	root := writeTree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":    strings.Repeat("K", 3<<20),
		"boot/initrd.img-6.1.0-9-amd64": strings.Repeat("I", 5<<20),
		"etc/hostname":                  "fake\n",
		`usr/share/a "quoted" name`:     "q",
		"usr/share/with space":          "s",
	})
	if err := os.Symlink("/usr/share/with space", filepath.Join(root, "etc/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "etc/hostname"), filepath.Join(root, "etc/hostname2")); err != nil {
		t.Fatal(err)
	}
	return root
}

func testSpec(tree, out string) Spec {
	return Spec{
		Tree: tree, Output: out, RootUUID: testRootUUID, ESPSerial: "1A2B-3C4D",
		MinRootSize: 96 * mib, Headroom: Headroom{Bytes: 8 * mib},
		SourceDateEpoch: time.Unix(1700000000, 0),
	}
}

func TestAssembleFakeTree(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	tree, dir := fakeTree(t), t.TempDir()
	a, err := Assemble(ctx, testSpec(tree, filepath.Join(dir, "a.raw")))
	if err != nil {
		t.Fatal(err)
	}
	// Touch the tree's atimes and ctimes the way a reader or chown would:
	// the second image must not notice.
	time.Sleep(1100 * time.Millisecond)
	if err := os.Chmod(filepath.Join(tree, "etc/hostname"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Assemble(ctx, testSpec(tree, filepath.Join(dir, "b.raw")))
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 {
		t.Errorf("same tree and spec gave different disks: %s vs %s", a.SHA256, b.SHA256)
	}
	if a.Size != a.ESPSize+a.RootSize+2*mib || a.ESPSize != minESPSize || a.RootSize != 96*mib {
		t.Errorf("sizes: %+v", a)
	}
	if sum, _ := sha256File(a.Path); sum != a.SHA256 {
		t.Errorf("Result.SHA256 %s is not the file's %s", a.SHA256, sum)
	}
	checkPartitions(t, a.Path)
	l := newLayout(amd64, mustUUID(t, testRootUUID), a.ESPSize, a.RootSize)
	checkRootFS(t, extract(t, a.Path, l.rootStart, l.rootSize))
	checkESP(t, extract(t, a.Path, l.espStart, l.espSize))
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestAssembleFailureLeavesNothing(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the first tool fails to start, after the work dir exists
	_, err := Assemble(ctx, testSpec(fakeTree(t), filepath.Join(dir, "x.raw")))
	if err == nil || !strings.HasPrefix(err.Error(), "disk: root filesystem: mkfs.ext4") || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestToQcow2(t *testing.T) {
	requireTools(t)
	ctx := context.Background()
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	if err := createSized(raw, 8*mib); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []Qcow2Option
	}{{"plain", nil}, {"compressed", []Qcow2Option{Compressed()}}} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".qcow2")
			if err := ToQcow2(ctx, raw, out, c.opts...); err != nil {
				t.Fatal(err)
			}
			info := qemuImgInfo(t, out)
			if info.Format != "qcow2" || info.VirtualSize != 8*mib {
				t.Errorf("qemu-img info: %+v", info)
			}
		})
	}
	err := ToQcow2(ctx, filepath.Join(dir, "missing.raw"), filepath.Join(dir, "m.qcow2"))
	if err == nil || !strings.Contains(err.Error(), "disk: qcow2: qemu-img convert") {
		t.Errorf("err = %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "m.qcow2")); serr == nil {
		t.Error("a failed conversion left its output")
	}
}

type imgInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

func qemuImgInfo(t *testing.T, path string) imgInfo {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info imgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// checkPartitions reads the table back with sfdisk.
func checkPartitions(t *testing.T, raw string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--dump", raw).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{"label: gpt", "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "attrs=\"LegacyBIOSBootable\"", "type=4F68BCE3-E8CD-4C1D-96E7-FBCAF984B709"} {
		if !strings.Contains(dump, want) {
			t.Errorf("partition table lacks %q:\n%s", want, dump)
		}
	}
	if out, err := exec.Command("sfdisk", "--verify", raw).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
}

// extract copies a partition out of the disk into its own file.
func extract(t *testing.T, raw string, off, size int64) string {
	t.Helper()
	in, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(t.TempDir(), "part")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, size)
	if _, err := in.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write(buf); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkRootFS(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", `stat "/usr/share/a ""quoted"" name"`, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	var times []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "ctime:" || f[0] == "atime:" || f[0] == "mtime:") {
			times = append(times, f[1])
		}
	}
	if len(times) != 3 || times[0] != times[1] || times[1] != times[2] {
		t.Errorf("atime, ctime and mtime differ: %v\n%s", times, out)
	}
}

func checkESP(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat: %v\n%s", err, out)
	}
	cmd := exec.Command("mdir", "-/", "-a", "-b", "-i", img, "::/")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	for _, want := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/syslinux/ldlinux.sys", "::/syslinux/ldlinux.c32",
		"::/syslinux/syslinux.cfg", "::/linux/vmlinuz-6.1.0-9-amd64", "::/linux/initrd.img-6.1.0-9-amd64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ESP lacks %s:\n%s", want, out)
		}
	}
}
