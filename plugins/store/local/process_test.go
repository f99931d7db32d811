package local_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/local"
)

// The helper process is this test binary run again with helperEnv set. It
// opens the state file, waits for "go" on stdin, tries to acquire a lease
// and reports one line on stdout:
//
//	held <token> <expires unix nanos> <owner>
//	refused <token> <holder>
//	error <message>
//
// then waits until stdin closes or it is killed, holding what it got.
const (
	helperEnv = "DROVER_STORE_HELPER"
	leaseName = "role/web"
)

func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for the multi-process tests")
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	ttl, err := time.ParseDuration(os.Getenv("HELPER_TTL"))
	if err != nil {
		say("error bad HELPER_TTL: %v", err)
		os.Exit(2)
	}
	s, err := local.New(local.Config{Path: os.Getenv("HELPER_PATH")})
	if err != nil {
		say("error %v", err)
		os.Exit(2)
	}
	in := bufio.NewReader(os.Stdin)
	say("ready")
	if line, _ := in.ReadString('\n'); line != "go\n" {
		os.Exit(2)
	}
	owner := fmt.Sprintf("%s pid %d", os.Getenv("HELPER_OWNER"), os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := s.Acquire(ctx, leaseName, owner, ttl)
	var held *store.HeldError
	switch {
	case err == nil:
		say("held %d %d %s", l.Token, l.Expires.UnixNano(), l.Owner)
	case errors.As(err, &held):
		say("refused %d %s", held.Lease.Token, held.Lease.Owner)
	default:
		say("error %v", err)
	}
	_, _ = io.Copy(io.Discard, in) // hold until stdin closes or killed
	os.Exit(0)
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startChild starts a helper process contending for leaseName in path as
// owner for ttl, and waits until it reports ready. The child is killed by
// PID when the test ends.
func startChild(t *testing.T, path, owner string, ttl time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_PATH="+path,
		"HELPER_OWNER="+owner, "HELPER_TTL="+ttl.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	if line := c.line(t); line != "ready" {
		t.Fatalf("child %s: %q, want ready", owner, line)
	}
	return c
}

// line returns the child's next stdout line, failing the test after a while.
func (c *child) line(t *testing.T) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		if c.lines.Scan() {
			got <- c.lines.Text()
		}
		close(got)
	}()
	select {
	case line, ok := <-got:
		if !ok {
			t.Fatalf("child %d exited without a report", c.cmd.Process.Pid)
		}
		return line
	case <-time.After(60 * time.Second):
		t.Fatalf("child %d did not report", c.cmd.Process.Pid)
		return ""
	}
}

// report is a parsed result line.
type report struct {
	held    bool
	token   uint64
	expires time.Time
	owner   string // the holder
}

func (c *child) start(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

func (c *child) report(t *testing.T) report {
	t.Helper()
	line := c.line(t)
	f := strings.SplitN(line, " ", 4)
	var r report
	var err error
	switch {
	case f[0] == "held" && len(f) == 4:
		r.held = true
		r.token, err = strconv.ParseUint(f[1], 10, 64)
		var ns int64
		if err == nil {
			ns, err = strconv.ParseInt(f[2], 10, 64)
		}
		r.expires, r.owner = time.Unix(0, ns), f[3]
	case f[0] == "refused" && len(f) >= 3:
		r.token, err = strconv.ParseUint(f[1], 10, 64)
		r.owner = strings.Join(f[2:], " ")
	default:
		err = errors.New("unexpected report")
	}
	if err != nil {
		t.Fatalf("child %d: %q: %v", c.cmd.Process.Pid, line, err)
	}
	return r
}

// TestProcessesContend starts several processes at once on one file: exactly
// one of them gets the lease, and the others are told who holds it.
func TestProcessesContend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	const n = 4
	var children []*child
	for i := range n {
		children = append(children, startChild(t, path, fmt.Sprintf("child%d@test", i), time.Minute))
	}
	for _, c := range children {
		c.start(t)
	}
	var winners []report
	var refused []report
	for _, c := range children {
		r := c.report(t)
		if r.held {
			winners = append(winners, r)
		} else {
			refused = append(refused, r)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d processes hold the lease, want 1: %+v", len(winners), winners)
	}
	w := winners[0]
	for _, r := range refused {
		if r.owner != w.owner || r.token != w.token {
			t.Errorf("refused child saw holder %q token %d, want %q token %d", r.owner, r.token, w.owner, w.token)
		}
	}
	l, err := newStore(t, path).Lease(t.Context(), leaseName)
	if err != nil || l.Owner != w.owner || l.Token != w.token {
		t.Errorf("Lease = %+v, %v; want %q token %d", l, err, w.owner, w.token)
	}
}

// TestKilledHolder kills a process while it holds a lease: until the lease
// expires others are refused and told who held it; then one takes it over.
func TestKilledHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	holder := startChild(t, path, "doomed@test", time.Second)
	holder.start(t)
	h := holder.report(t)
	if !h.held {
		t.Fatalf("first child did not get the lease: %+v", h)
	}
	if err := syscall.Kill(holder.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.cmd.Wait()

	// Before expiry: refused, naming the dead holder, in this process and
	// in another.
	_, err := newStore(t, path).Acquire(t.Context(), leaseName, "parent@test", time.Minute)
	var held *store.HeldError
	if !errors.As(err, &held) || held.Lease.Owner != h.owner || held.Lease.Token != h.token {
		tooSlow(t, h.expires)
		t.Fatalf("Acquire from the test process = %v, want HeldError naming %q", err, h.owner)
	}
	if !strings.Contains(err.Error(), h.owner) {
		t.Errorf("message %q does not name the holder", err)
	}
	early := startChild(t, path, "early@test", time.Minute)
	early.start(t)
	r := early.report(t)
	if r.held {
		tooSlow(t, h.expires)
		t.Fatalf("a second process got the lease before its expiry")
	}
	if r.owner != h.owner || !strings.Contains(r.owner, fmt.Sprintf("pid %d", holder.cmd.Process.Pid)) {
		t.Errorf("refused with holder %q, want the dead holder %q", r.owner, h.owner)
	}

	// After expiry: taken over with a greater token.
	time.Sleep(time.Until(h.expires) + 100*time.Millisecond)
	late := startChild(t, path, "late@test", time.Minute)
	late.start(t)
	r = late.report(t)
	if !r.held || !strings.HasPrefix(r.owner, "late@test") || r.token <= h.token {
		t.Fatalf("after expiry: %+v, want late@test holding a token greater than %d", r, h.token)
	}
}

// tooSlow skips the test if a lease meant to be live has expired: the
// machine was too slow for the timing the test relies on.
func tooSlow(t *testing.T, expires time.Time) {
	t.Helper()
	if !time.Now().Before(expires) {
		t.Skipf("machine too slow: the lease expired %v ago before the check", time.Since(expires))
	}
}
