// Package qemuproc finds and stops daemonized qemu processes by their pid files: the lab's qemu
// provider and the cloud lab's machines both run qemu with -daemonize -pidfile, so the process
// outlives whoever started it and is found again by what its pid file says.
package qemuproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReadPID reads a pid file qemu wrote.
func ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

// Running reports whether pid is a live qemu started with -pidfile pidFile. A PID alone is not
// proof: after a reboot or a long time it may belong to another process, so the command line must
// name the pid file. Zombies (a VM that exited and was not yet reaped) do not count.
func Running(pid int, pidFile string) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv := strings.Split(string(cmdline), "\x00")
	return strings.Contains(argv[0][strings.LastIndexByte(argv[0], '/')+1:], "qemu-system") &&
		bytes.Contains(cmdline, []byte("\x00"+pidFile+"\x00"))
}

// Kill stops the qemu of pidFile with SIGTERM (qemu exits at once, like pulling the power), then
// SIGKILL, waiting up to wait after each, and returns once it is gone. A process already gone is
// nil.
func Kill(pid int, pidFile string, wait time.Duration) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if !Running(pid, pidFile) {
			return nil
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing pid %d: %w", pid, err)
		}
		for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if !Running(pid, pidFile) {
				return nil
			}
		}
	}
	return fmt.Errorf("pid %d still runs after SIGKILL", pid)
}

// StartError is a qemu that did not start: why, and what it wrote to its launch log.
type StartError struct {
	Err error
	Log string // the launch log's text, trimmed
}

func (e *StartError) Error() string {
	if e.Log == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Log
}

func (e *StartError) Unwrap() error { return e.Err }

// Start runs argv, a qemu that daemonizes itself with -daemonize -pidfile pidFile, in dir with its
// output in logFile, and returns the daemon's PID once qemu has set the VM up (disk opened,
// forwards bound, monitor listening); the VM runs on in its own session, a child of init.
//
// The launcher is not killed when ctx ends: its daemon child could then be left half started,
// with no pid file yet to find it by. It gets limit of its own instead, and a VM started for a
// ctx that ended meanwhile is killed (waiting up to killWait per signal) before Start returns
// an error wrapping ctx's cause. Any other failure is a *StartError.
func Start(ctx context.Context, argv []string, dir, pidFile, logFile string, limit, killWait time.Duration) (int, error) {
	os.Remove(pidFile)
	log, err := os.Create(logFile)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	cmd := exec.CommandContext(lctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = killWait
	runErr := cmd.Run()
	pid, pidErr := ReadPID(pidFile)
	if runErr == nil && pidErr == nil && Running(pid, pidFile) && ctx.Err() == nil {
		return pid, nil
	}
	if pidErr == nil {
		Kill(pid, pidFile, killWait) // half started, or started after all while ctx ended
	}
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}
	msg, _ := os.ReadFile(logFile)
	if runErr == nil {
		runErr = fmt.Errorf("no running qemu after start (pid file: %v)", pidErr)
	}
	return 0, &StartError{Err: runErr, Log: strings.TrimSpace(string(msg))}
}
