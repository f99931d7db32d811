package qemuproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestReadPID(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.pid"), filepath.Join(dir, "bad.pid")
	os.WriteFile(good, []byte("1234\n"), 0o600)
	os.WriteFile(bad, []byte("-1\n"), 0o600)
	if pid, err := ReadPID(good); pid != 1234 || err != nil {
		t.Errorf("ReadPID(good) = %d, %v", pid, err)
	}
	if _, err := ReadPID(bad); err == nil {
		t.Error("ReadPID of a negative pid succeeded")
	}
	if _, err := ReadPID(filepath.Join(dir, "none.pid")); !os.IsNotExist(err) {
		t.Errorf("ReadPID of a missing file: %v, want not exist", err)
	}
}

// TestRunningIsQemuOfThePidFile: a live process that is not a qemu of the pid file does not count,
// so a reused PID is never killed by mistake, and Kill of it does nothing.
func TestRunningIsQemuOfThePidFile(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pidFile := filepath.Join(t.TempDir(), "qemu.pid")
	if Running(cmd.Process.Pid, pidFile) {
		t.Error("a sleep counts as the qemu of the pid file")
	}
	if err := Kill(cmd.Process.Pid, pidFile, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
		t.Errorf("Kill stopped a process that is not the pid file's qemu: %v", err)
	}
	if Running(0, pidFile) || Running(-5, pidFile) {
		t.Error("non-positive pids run")
	}
}
