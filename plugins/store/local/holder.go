package local

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// ErrBusy is wrapped by the error of a call that gave up waiting for the state file's lock.
var ErrBusy = store.ErrBusy

// holderPath is the file beside the state file that names the process holding its lock, so a
// process that waits for the lock can say who it waits for.
func holderPath(path string) string { return path + ".holder" }

// writeHolder records this process as the lock's holder: "PID COMMAND-LINE" and the time. It is
// best effort: the lock works without it, only the message of a waiting process is poorer. Called
// with the lock held; removeHolder is called before the lock is released.
func writeHolder(path string) {
	cmd := strings.Join(os.Args, " ")
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	line := fmt.Sprintf("%d %s\n%s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339), cmd)
	_ = os.WriteFile(holderPath(path), []byte(line), 0o600)
}

func removeHolder(path string) { _ = os.Remove(holderPath(path)) }

// describeHolder names the process the holder file records, if that process still runs:
// "pid 4242 (drover rollout start web), holding it since 2026-12-04T09:00:00Z".
func describeHolder(path string) string {
	raw, err := os.ReadFile(holderPath(path))
	if err != nil || len(raw) > 4096 {
		return "another process (it recorded nothing; fuser " + path + " names it)"
	}
	first, cmd, _ := strings.Cut(string(raw), "\n")
	pidText, since, _ := strings.Cut(first, " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return "another process (its record " + holderPath(path) + " is unreadable)"
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return fmt.Sprintf("another process (the last recorded holder, pid %d, has exited; fuser %s names the holder)", pid, path)
	}
	return fmt.Sprintf("pid %d (%s), holding it since %s", pid, strings.TrimSpace(cmd), since)
}
