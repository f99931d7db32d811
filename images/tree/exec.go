package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// waitDelay bounds how long a finished or killed command may keep its
// output pipes open through a stray grandchild before Wait gives up.
const waitDelay = 10 * time.Second

// chrootPath is PATH inside a Debian tree, and for the host tools we run.
const chrootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// command is one external tool invocation.
type command struct {
	args []string  // argv; args[0] is looked up in PATH
	env  []string  // the whole environment; nil means the host's
	dir  string    // working directory; empty means ours
	log  io.Writer // receives the combined output as it comes; may be nil
	// isolate runs the command in a private mount and UTS namespace, so
	// mounts it makes vanish with it and it cannot see or set our host name.
	isolate bool
}

// commandFailure describes a command that ran and failed.
type commandFailure struct {
	exitCode int // -1 when killed by a signal or not started
	tail     []string
	err      error // says what happened, including cancellation
}

// run executes c in its own process group, streams its output to c.log and
// remembers the last lines for the error. On cancellation the whole group
// is killed, not just the direct child, so that dpkg, apt or a shell's
// children do not outlive the build; any leftover group member is killed
// when the command ends for the same reason.
func run(ctx context.Context, c command) *commandFailure {
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	tail := newTailBuffer(tailLines)
	var out io.Writer = tail
	if c.log != nil {
		out = io.MultiWriter(c.log, tail)
	}
	// One writer for both streams: os/exec then uses a single pipe and the
	// output keeps its order.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.isolate {
		// os/exec also makes / private (MS_REC|MS_PRIVATE) in the child when
		// it unshares the mount namespace, so nothing propagates back.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS
	}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	if cmd.Process != nil {
		_ = killGroup(cmd)
	}
	if err == nil {
		return nil
	}
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return &commandFailure{exitCode: code, tail: tail.Lines(), err: err}
}

// killGroup kills the process group led by cmd's process. The group id
// cannot be reused while any member lives, so this never hits a stranger.
func killGroup(cmd *exec.Cmd) error {
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// asStepError turns a command failure into the step's error, with what
// describes the command in words ("mmdebstrap", "command 2 (...)").
func (f *commandFailure) asStepError(step, what string) *StepError {
	msg := fmt.Errorf("%s failed: %w", what, f.err)
	if f.exitCode > 0 {
		msg = fmt.Errorf("%s exited with code %d: %w", what, f.exitCode, f.err)
	}
	for _, l := range f.tail {
		if strings.Contains(l, "No space left on device") {
			// Name the cause up front, and let callers test for it.
			msg = fmt.Errorf("disk full: %w: %w", syscall.ENOSPC, msg)
			break
		}
	}
	return &StepError{Step: step, ExitCode: f.exitCode, Tail: f.tail, Err: msg}
}

// chrootEnv is the environment of commands inside a tree: fixed, so that
// the build host's variables (credentials, locale, PATH) do not leak into
// the image, plus the few host settings a build legitimately needs.
func chrootEnv() []string {
	env := []string{
		"PATH=" + chrootPath,
		"HOME=/root",
		"LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "SOURCE_DATE_EPOCH", "http_proxy", "https_proxy", "no_proxy",
			"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY":
			env = append(env, kv)
		}
	}
	return env
}

// quoteShort quotes a command for an error message, shortened so that a
// long script does not drown the message.
func quoteShort(s string) string {
	const max = 120
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
