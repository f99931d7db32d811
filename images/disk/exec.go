package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// outputTailLines is how many lines of a failed command's output an error
// carries: enough to show the tool's complaint, short enough for a log line.
const outputTailLines = 20

// CommandError reports a failed external tool. It names the assembly step and
// the command so that a failed build says what broke without a rerun.
type CommandError struct {
	Step     string   // the assembly step, e.g. "root filesystem"
	Args     []string // the command and its arguments
	ExitCode int      // -1 when the command did not run or was killed
	Output   string   // the last lines of its combined stdout and stderr
	Err      error    // the underlying error from os/exec
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("disk: %s: %s: exit code %d: %v", e.Step, strings.Join(e.Args, " "), e.ExitCode, e.Err)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// command describes one external tool invocation.
type command struct {
	step  string    // what the call is for, used in errors
	args  []string  // argv, args[0] looked up in PATH
	env   []string  // added to the environment
	stdin io.Reader // optional
}

// run executes c and captures its combined output, so a failure can be
// reported with the tool's own words rather than just an exit status.
func run(ctx context.Context, c command) (string, error) {
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = c.stdin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return out.String(), &CommandError{
		Step:     c.step,
		Args:     c.args,
		ExitCode: code,
		Output:   lastLines(out.String(), outputTailLines),
		Err:      err,
	}
}

// lastLines returns at most n trailing lines of s, without a final newline.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
