package tree

import (
	"bytes"
	"fmt"
	"strings"
)

// tailLines is how many trailing output lines a failed command's error
// carries: enough to show the tool's complaint, short enough for a log line.
const tailLines = 20

// maxLineBytes caps one remembered output line, so a tool that prints a
// megabyte without a newline cannot blow up an error message.
const maxLineBytes = 1024

// StepError reports a failed step of tree preparation. Step is one of
// "bootstrap", "copy", "files", "run", "ansible", "hygiene" or "sbom".
// When an external command failed, ExitCode is its exit status (-1 when it
// was killed or did not start) and Tail holds the last lines of its
// combined output; otherwise ExitCode is 0 and Tail is empty.
type StepError struct {
	Step     string
	ExitCode int
	Tail     []string
	Err      error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tree: %s: %v", e.Step, e.Err)
	if len(e.Tail) > 0 {
		fmt.Fprintf(&b, "\nlast %d lines of output:", len(e.Tail))
		for _, l := range e.Tail {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// stepErr wraps err as a StepError of step unless it already is one, so
// helpers can return plain errors and the exported functions name the step.
func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	if se, ok := err.(*StepError); ok {
		return se
	}
	return &StepError{Step: step, Err: err}
}

// tailBuffer is an io.Writer that remembers the last n lines written to it.
type tailBuffer struct {
	n       int
	lines   []string
	partial []byte
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			t.appendPartial(rest)
			break
		}
		t.appendPartial(rest[:i])
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		rest = rest[i+1:]
	}
	return len(p), nil
}

func (t *tailBuffer) appendPartial(b []byte) {
	if room := maxLineBytes - len(t.partial); room > 0 {
		t.partial = append(t.partial, b[:min(room, len(b))]...)
	}
}

func (t *tailBuffer) push(line string) {
	t.lines = append(t.lines, strings.TrimRight(line, "\r"))
	if len(t.lines) > t.n {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.n:]...)
	}
}

// Lines returns the remembered lines, including an unterminated last line.
func (t *tailBuffer) Lines() []string {
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, strings.TrimRight(string(t.partial), "\r"))
	}
	if len(out) > t.n {
		out = out[len(out)-t.n:]
	}
	return out
}
