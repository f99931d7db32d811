package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTemplateNotARegularFile: a template that is a device or a FIFO fails the boot at once, with
// a reason, instead of reading without end or blocking; a large file is refused after its bound.
func TestTemplateNotARegularFile(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(root, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", maxTemplate+10)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ root, path, want string }{
		{"/", "/dev/zero", "not a regular file"},
		{root, "/fifo", "not a regular file"},
		{root, "/big", "more than"},
	} {
		done := make(chan error, 1)
		go func() { _, err := loadTemplate(c.root, "x", c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("template %s: %v, want %q", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("template %s: loadTemplate hangs", c.path)
		}
	}
}
