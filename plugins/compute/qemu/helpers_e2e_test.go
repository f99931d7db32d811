//go:build e2e

package qemu_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// killAll kills, by PID, every VM whose pid file is under stateDir when the
// test ends, passed or failed, so no test leaves a qemu behind.
func killAll(t *testing.T, stateDir string) {
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(stateDir, "lab", "instances", "*", "qemu.pid"))
		for _, f := range pids {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				continue
			}
			if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmd), f) {
				t.Logf("cleanup: killing qemu pid %d", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}
