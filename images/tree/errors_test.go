package tree

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTailBufferKeepsLastLines(t *testing.T) {
	tb := newTailBuffer(20)
	for i := 1; i <= 35; i++ {
		fmt.Fprintf(tb, "line %d\n", i)
	}
	fmt.Fprint(tb, "partial")
	got := tb.Lines()
	if len(got) != 20 || got[0] != "line 17" || got[18] != "line 35" || got[19] != "partial" {
		t.Fatalf("tail = %q", got)
	}
	long := newTailBuffer(3)
	fmt.Fprint(long, strings.Repeat("x", 5000)+"\r\n")
	if l := long.Lines(); len(l) != 1 || len(l[0]) != maxLineBytes {
		t.Fatalf("long line not capped: %d lines, %d bytes", len(l), len(l[0]))
	}
}

func TestStepErrorFormat(t *testing.T) {
	inner := errors.New("command 1 of 1 (\"false\") exited with code 1")
	e := &StepError{Step: "run", ExitCode: 1, Tail: []string{"a", "b"}, Err: inner}
	want := "tree: run: command 1 of 1 (\"false\") exited with code 1\nlast 2 lines of output:\n  a\n  b"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if !errors.Is(e, inner) {
		t.Fatal("Unwrap does not reach the cause")
	}
	if stepErr("files", nil) != nil {
		t.Fatal("stepErr(nil) is not nil")
	}
	if se := stepErr("files", e).(*StepError); se.Step != "run" {
		t.Fatal("stepErr rewrapped a StepError")
	}
}

func TestRunFailureCarriesExitCodeAndTail(t *testing.T) {
	var log strings.Builder
	f := run(context.Background(), command{
		args: []string{"/bin/sh", "-c", `for i in $(seq 1 30); do echo out$i; done; echo err >&2; exit 7`},
		log:  &log,
	})
	if f == nil {
		t.Fatal("no failure")
	}
	se := f.asStepError("run", "command 1")
	if se.ExitCode != 7 || len(se.Tail) != 20 || se.Tail[0] != "out12" || se.Tail[19] != "err" {
		t.Fatalf("exit %d, tail %q", se.ExitCode, se.Tail)
	}
	if !strings.Contains(se.Error(), "tree: run: command 1 exited with code 7") || !strings.Contains(log.String(), "out1\n") {
		t.Fatalf("error %q, log %q", se.Error(), log.String())
	}
}

func TestRunDiskFullIsENOSPC(t *testing.T) {
	f := run(context.Background(), command{args: []string{"/bin/sh", "-c", `echo "cp: error writing 'x': No space left on device"; exit 1`}})
	se := f.asStepError("copy", "cp")
	if !errors.Is(se, syscall.ENOSPC) || !strings.Contains(se.Error(), "disk full") {
		t.Fatalf("error %v does not say disk full", se)
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The background sleep holds the output pipe: only killing the whole
	// group ends the command promptly.
	f := run(ctx, command{args: []string{"/bin/sh", "-c", "sleep 30 & sleep 30; wait"}})
	if f == nil || !errors.Is(f.err, context.DeadlineExceeded) || f.exitCode != -1 {
		t.Fatalf("failure = %+v", f)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancellation took %s", d)
	}
}
