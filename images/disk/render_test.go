package disk

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testRootUUID = "3d1f0c2e-6f1c-4b7a-9a51-0f0a3c1b2d4e"

var amd64 = arches[ArchAMD64]

func mustUUID(t *testing.T, s string) uuid {
	t.Helper()
	u, err := parseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// golden compares got with testdata/name, or rewrites it when
// DROVER_UPDATE_GOLDEN=1.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if os.Getenv("DROVER_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (DROVER_UPDATE_GOLDEN=1 go test creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func testBootFiles() bootFiles {
	return bootFiles{version: "6.1.0-28-amd64", kernel: "boot/vmlinuz-6.1.0-28-amd64", initrd: "boot/initrd.img-6.1.0-28-amd64"}
}

func TestSfdiskScriptGolden(t *testing.T) {
	l := newLayout(amd64, mustUUID(t, testRootUUID), 64*mib, 1024*mib)
	golden(t, "sfdisk.golden", l.sfdiskScript())
}

func TestGrubCfgGolden(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	golden(t, "grub.cfg.golden", renderGrubCfg(amd64, root, testBootFiles(), amd64.kernelCmdline(root, "quiet x=$y")))
}

func TestSyslinuxCfgGolden(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	golden(t, "syslinux.cfg.golden", renderSyslinuxCfg(testBootFiles(), amd64.kernelCmdline(root, "quiet")))
}

func TestKernelCmdline(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	got := amd64.kernelCmdline(root, "  net.ifnames=0 ")
	want := "root=UUID=" + testRootUUID + " rw console=tty0 console=ttyS0,115200n8 net.ifnames=0"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := checkCmdline("a\nb"); err == nil {
		t.Error("a newline in the command line was accepted")
	}
}

func TestGrubWords(t *testing.T) {
	for in, want := range map[string]string{
		"root=UUID=x ro":     "root=UUID=x ro",
		"a=$b":               "'a=$b'",
		`it's`:               `'it'\''s'`,
		"x;reboot  console=": "'x;reboot' console=",
	} {
		if got := grubWords(in); got != want {
			t.Errorf("grubWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMemdiskTarIsStable(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	a, err := memdiskTar("echo hi\n", epoch)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := memdiskTar("echo hi\n", epoch)
	if !bytes.Equal(a, b) {
		t.Fatal("two memdisks of the same config differ")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
	}
	if got := strings.Join(names, ","); got != "boot/,boot/grub/,boot/grub/grub.cfg" {
		t.Errorf("memdisk holds %s", got)
	}
}

func TestTimesScript(t *testing.T) {
	mt := time.Unix(1700000000, 5)
	got := timesScript([]entry{{"/", mt}, {`/a "b" c`, mt}, {"/bad\nname", mt}}, time.Time{})
	want := "sif \"/\" atime @1700000000\nsif \"/\" ctime @1700000000\n" +
		"sif \"/a \"\"b\"\" c\" atime @1700000000\nsif \"/a \"\"b\"\" c\" ctime @1700000000\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDebugfsErrors(t *testing.T) {
	out := "debugfs 1.47.0 (5-Feb-2023)\ndebugfs: sif \"/nope\" atime @1\n/nope: File not found by ext2_lookup \ndebugfs: sif \"/a\" ctime @1\n"
	errs := debugfsErrors(out)
	if len(errs) != 1 || !strings.Contains(errs[0], "File not found") {
		t.Errorf("debugfsErrors = %q", errs)
	}
	if errs := debugfsErrors("debugfs 1.47.0 (5-Feb-2023)\ndebugfs: sif \"/\" atime @1\n"); len(errs) != 0 {
		t.Errorf("clean output gave %q", errs)
	}
}
