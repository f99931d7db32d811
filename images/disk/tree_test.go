package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTree creates files (path -> content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindKernelPicksNewestWithInitrd(t *testing.T) {
	root := writeTree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":     "k",
		"boot/initrd.img-6.1.0-9-amd64":  "i",
		"boot/vmlinuz-6.1.0-10-amd64":    "k",
		"boot/initrd.img-6.1.0-10-amd64": "i",
		"boot/vmlinuz-6.1.0-11-amd64":    "k", // no initrd: skipped
	})
	k, err := findKernel(root)
	if err != nil {
		t.Fatal(err)
	}
	if k.version != "6.1.0-10-amd64" || k.kernel != "boot/vmlinuz-6.1.0-10-amd64" || k.initrd != "boot/initrd.img-6.1.0-10-amd64" {
		t.Errorf("findKernel = %+v", k)
	}
}

func TestFindKernelNone(t *testing.T) {
	_, err := findKernel(writeTree(t, map[string]string{"etc/hostname": "x"}))
	if err == nil || !strings.HasPrefix(err.Error(), "disk: ") {
		t.Fatalf("err = %v, want a disk: error", err)
	}
}

func TestScanTree(t *testing.T) {
	root := writeTree(t, map[string]string{
		"boot/vmlinuz-1":    strings.Repeat("k", 5000), // two blocks
		"boot/initrd.img-1": "i",
		"etc/a":             "a",
	})
	if err := os.Link(filepath.Join(root, "etc/a"), filepath.Join(root, "etc/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("x", 100), filepath.Join(root, "etc/long")); err != nil {
		t.Fatal(err)
	}
	newest := time.Unix(1800000000, 0)
	if err := os.Chtimes(filepath.Join(root, "etc/a"), newest, newest); err != nil {
		t.Fatal(err)
	}
	info, err := scanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	// Inodes: /, boot, etc, vmlinuz, initrd, a (b is a hard link), long.
	if info.usage.inodes != 7 {
		t.Errorf("inodes = %d, want 7", info.usage.inodes)
	}
	// Blocks: 3 dirs, 2 for vmlinuz, 1 initrd, 1 for a, 1 for the long symlink.
	if want := int64(8 * blockSize); info.usage.bytes != want {
		t.Errorf("bytes = %d, want %d", info.usage.bytes, want)
	}
	if !info.newest.Equal(newest) {
		t.Errorf("newest = %v, want %v", info.newest, newest)
	}
	if len(info.entries) != 8 || info.entries[0].path != "/" {
		t.Errorf("entries = %+v", info.entries)
	}
}

func TestCommandErrorNamesStepCodeAndOutput(t *testing.T) {
	script := "for i in $(seq 1 30); do echo line$i; done; exit 3"
	_, err := run(context.Background(), command{step: "a step", args: []string{"sh", "-c", script}})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CommandError", err)
	}
	msg := err.Error()
	for _, want := range []string{"disk: a step: sh -c", "exit code 3", "line30"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "line10\n") || strings.Count(ce.Output, "\n") != outputTailLines-1 {
		t.Errorf("output is not the last %d lines: %q", outputTailLines, ce.Output)
	}
}

func TestCommandErrorMissingTool(t *testing.T) {
	_, err := run(context.Background(), command{step: "s", args: []string{"/nonexistent/tool"}})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Fatalf("err = %v, want a CommandError with exit code -1", err)
	}
}

func TestCheckToolsNamesPackages(t *testing.T) {
	err := checkTools([]Tool{{"sh", "dash"}, {"no-such-tool-x", "pkg-x"}, {"/no/such/file", "pkg-y"}})
	if err == nil || !strings.Contains(err.Error(), "apt-get install pkg-x pkg-y") {
		t.Fatalf("err = %v", err)
	}
}
