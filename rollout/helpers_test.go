package rollout_test

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
)

func hostname() (string, error) { return os.Hostname() }

// deadPID returns a pid no process has.
func deadPID(t *testing.T) string {
	t.Helper()
	for pid := 4194000; pid > 4000000; pid-- {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return strconv.Itoa(pid)
		}
	}
	t.Skip("no free pid found")
	return ""
}
