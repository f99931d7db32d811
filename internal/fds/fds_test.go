package fds

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestCloseInheritedOnExec starts this test binary as a child with two extra descriptors (3 and 4,
// not close-on-exec in the child, as a parent such as Packer leaves them); the child marks them and
// runs ls on its /proc/self/fd: only 0, 1 and 2 (and ls's own listing) reach the grandchild, while
// the child itself can still use descriptor 3.
func TestCloseInheritedOnExec(t *testing.T) {
	if os.Getenv("FDS_TEST_CHILD") == "1" {
		if err := CloseInheritedOnExec(); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(3, &st); err != nil {
			t.Fatalf("descriptor 3 closed in this process: %v", err)
		}
		out, err := exec.Command("ls", "/proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("FDS:" + strings.Join(strings.Fields(string(out)), ",") + "\n")
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseInheritedOnExec$", "-test.v")
	cmd.Env = append(os.Environ(), "FDS_TEST_CHILD=1")
	cmd.ExtraFiles = []*os.File{r, w}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var fds string
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, "FDS:"); ok {
			fds = s
		}
	}
	// ls sees 0-2 and the descriptor of the directory it lists (3); a leaked 4 would show.
	if fds != "0,1,2,3" {
		t.Errorf("descriptors a grandchild sees: %q, want 0,1,2,3 (ls's own listing)\n%s", fds, out)
	}
}
