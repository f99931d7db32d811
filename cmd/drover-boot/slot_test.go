package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The slot commands themselves run over a real sshd against card files in plugins/compute/device
// and internal/abslot; here, what the command line accepts.
func TestSlotCommandLine(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	missing := map[string]string{"DROVER_BOOT_DISK": filepath.Join(t.TempDir(), "no-card")}
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{nil, exitUsage, "usage"},
		{[]string{"write"}, exitUsage, "usage"},
		{[]string{"write", "c"}, exitUsage, "usage"},
		{[]string{"commit", "a", "b"}, exitUsage, "usage"},
		{[]string{"status"}, exitFailed, "opening the card"},
		{[]string{"trial", "b"}, exitFailed, "opening the card"},
	} {
		var out, errb bytes.Buffer
		if code := slotMain(c.args, env(missing), strings.NewReader(""), &out, &errb); code != c.code || !strings.Contains(errb.String(), c.says) {
			t.Errorf("slot %q: exit %d, stderr %q; want %d saying %q", c.args, code, errb.String(), c.code, c.says)
		}
	}
	rebooted := filepath.Join(t.TempDir(), "rebooted")
	if code := slotMain([]string{"reboot"}, env(map[string]string{"DROVER_BOOT_REBOOT_FILE": rebooted}), nil, &bytes.Buffer{}, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("reboot with the test override: exit %d", code)
	}
}
