package scan

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// disk writes a sparse raw disk of size bytes with a partition table made by table and an ext
// superblock magic at each offset in extAt.
func disk(t *testing.T, size int64, table func(b []byte), extAt ...int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 34*sector)
	table(head)
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	for _, off := range extAt {
		if _, err := f.WriteAt([]byte{0x53, 0xEF}, off+1024+56); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func gpt(parts ...[2]int64) func([]byte) {
	return func(b []byte) {
		copy(b[sector:], "EFI PART")
		binary.LittleEndian.PutUint64(b[sector+72:], 2)
		binary.LittleEndian.PutUint32(b[sector+80:], 128)
		binary.LittleEndian.PutUint32(b[sector+84:], 128)
		for i, p := range parts {
			e := b[2*sector+128*i:]
			e[0] = 1 // a type GUID that is not zero
			binary.LittleEndian.PutUint64(e[32:], uint64(p[0]/sector))
			binary.LittleEndian.PutUint64(e[40:], uint64((p[0]+p[1])/sector-1))
		}
	}
}

func mbr(parts ...[2]int64) func([]byte) {
	return func(b []byte) {
		b[510], b[511] = 0x55, 0xAA
		for i, p := range parts {
			e := b[446+16*i:]
			e[4] = 0x83
			binary.LittleEndian.PutUint32(e[8:], uint32(p[0]/sector))
			binary.LittleEndian.PutUint32(e[12:], uint32(p[1]/sector))
		}
	}
}

func TestRootPartition(t *testing.T) {
	const mib = 1 << 20
	esp, root := [2]int64{1 * mib, 4 * mib}, [2]int64{5 * mib, 10 * mib}
	for name, c := range map[string]struct {
		path    string
		off, ln int64
		err     string
	}{
		"gpt":            {path: disk(t, 16*mib, gpt(esp, root), root[0]), off: root[0], ln: root[1]},
		"mbr":            {path: disk(t, 16*mib, mbr(esp, root), root[0]), off: root[0], ln: root[1]},
		"bare ext":       {path: disk(t, 4*mib, func([]byte) {}, 0), off: 0, ln: 4 * mib},
		"no ext":         {path: disk(t, 16*mib, gpt(esp, root)), err: "no partition holds an ext2/3/4 filesystem"},
		"no table":       {path: disk(t, 4*mib, func([]byte) {}), err: "no partition table"},
		"past the end":   {path: disk(t, 8*mib, gpt(esp, root), root[0]), err: "no partition holds"},
		"not even there": {path: filepath.Join(t.TempDir(), "none"), err: "no such file"},
	} {
		off, ln, err := RootPartition(c.path)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want an error with %q", name, err, c.err)
		case c.err == "" && (err != nil || off != c.off || ln != c.ln):
			t.Errorf("%s: %d, %d, %v; want %d, %d", name, off, ln, err, c.off, c.ln)
		}
	}
}

// TestExtractRoot makes a real ext4 root partition with mkfs.ext4 -d, extracts it with debugfs and
// scans it.
func TestExtractRoot(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (e2fsprogs)", tool)
		}
	}
	token := "gh" + "p_" + rnd(36)
	src := tree(t, map[string]string{"/etc/app.env": "GITHUB_TOKEN=" + token + "\n", "/etc/motd": "hi\n"})
	if err := os.Symlink("/etc/motd", filepath.Join(src, "etc", "motd.link")); err != nil {
		t.Fatal(err)
	}
	fs := filepath.Join(t.TempDir(), "root.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, fs, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	content, err := os.ReadFile(fs)
	if err != nil {
		t.Fatal(err)
	}
	const start = 2 << 20
	raw := disk(t, start+int64(len(content))+1<<20, gpt([2]int64{1 << 20, 1 << 20}, [2]int64{start, int64(len(content))}))
	f, err := os.OpenFile(raw, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(content, start); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out := t.TempDir()
	if err := ExtractRoot(context.Background(), raw, out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "etc", "motd")); err != nil || string(b) != "hi\n" {
		t.Errorf("etc/motd: %q, %v", b, err)
	}
	r, err := Scan(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got(r)) != "[{/etc/app.env github-token}]" {
		t.Errorf("findings %v", r.Findings)
	}

	if err := ExtractRoot(context.Background(), raw, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("extracting into a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ExtractRoot(ctx, raw, t.TempDir()); err == nil {
		t.Error("a cancelled extraction succeeded")
	}
}
