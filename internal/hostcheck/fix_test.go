package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// failing is a mix of results as Run returns them on a fresh host.
func failing() []Result {
	return []Result{
		{Name: "qemu-img", Status: StatusOK},
		{Name: "qemu-system-x86_64", Status: StatusFail, Fix: "apt-get install qemu-system-x86", Packages: []string{"qemu-system-x86"}},
		{Name: "mtools", Status: StatusFail, Fix: "apt-get install mtools", Packages: []string{"mtools"}},
		{Name: "binfmt-arm64", Status: StatusFail, Fix: "...", Packages: []string{"qemu-user-static", "binfmt-support"},
			Commands: [][]string{
				{"mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"},
				{"update-binfmts", "--enable", "qemu-aarch64"},
			}},
		{Name: "kvm", Status: StatusWarn, Fix: "enable virtualization"},
		{Name: "tcg", Status: StatusFail, Fix: "apt-get install qemu-system-x86", Packages: []string{"qemu-system-x86"}},
		{Name: "disk-space", Status: StatusOK, Detail: "80 GiB"},
	}
}

func wantPlan() [][]string {
	return [][]string{
		{"apt-get", "update"},
		{"apt-get", "install", "-y", "--no-install-recommends", "binfmt-support", "mtools", "qemu-system-x86", "qemu-user-static"},
		{"mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"},
		{"update-binfmts", "--enable", "qemu-aarch64"},
	}
}

func TestFixPlan(t *testing.T) {
	pkgs, cmds := FixPlan(failing())
	if want := []string{"binfmt-support", "mtools", "qemu-system-x86", "qemu-user-static"}; !slices.Equal(pkgs, want) {
		t.Errorf("packages = %v, want %v", pkgs, want)
	}
	if !slices.EqualFunc(cmds, wantPlan(), slices.Equal) {
		t.Errorf("commands = %q\nwant %q", cmds, wantPlan())
	}
}

func TestFixPlanCommandsOnly(t *testing.T) {
	enable := []string{"update-binfmts", "--enable", "qemu-aarch64"}
	pkgs, cmds := FixPlan([]Result{
		{Name: "a", Status: StatusFail, Commands: [][]string{enable}},
		{Name: "b", Status: StatusFail, Commands: [][]string{enable}},
	})
	if len(pkgs) != 0 || !slices.EqualFunc(cmds, [][]string{enable}, slices.Equal) {
		t.Fatalf("got %v, %q; want no apt-get and one update-binfmts", pkgs, cmds)
	}
}

// recorder is a Runner that records commands instead of running them.
type recorder struct {
	cmds []Command
	fail string // Args[0] that fails
}

func (r *recorder) run(_ context.Context, c Command, out io.Writer) error {
	r.cmds = append(r.cmds, c)
	if c.Args[0] == r.fail {
		return errors.New("exit status 2")
	}
	return nil
}

func TestFixAsRoot(t *testing.T) {
	rec := &recorder{}
	var out bytes.Buffer
	err := Fix(context.Background(), Options{Runner: rec.run, Geteuid: func() int { return 0 }}, failing(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.cmds) != len(wantPlan()) {
		t.Fatalf("ran %d commands, want %d: %+v", len(rec.cmds), len(wantPlan()), rec.cmds)
	}
	for i, c := range rec.cmds {
		if !slices.Equal(c.Args, wantPlan()[i]) {
			t.Errorf("command %d = %q, want %q", i, c.Args, wantPlan()[i])
		}
		apt := c.Args[0] == "apt-get"
		if hasEnv := slices.Contains(c.Env, "DEBIAN_FRONTEND=noninteractive"); hasEnv != apt {
			t.Errorf("command %q env = %v", c.Args, c.Env)
		}
	}
	for _, want := range []string{"+ apt-get update\n", "+ update-binfmts --enable qemu-aarch64\n", "not fixed automatically: kvm: enable virtualization\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFixStopsAtFailure(t *testing.T) {
	rec := &recorder{fail: "mount"}
	err := Fix(context.Background(), Options{Runner: rec.run, Geteuid: func() int { return 0 }}, failing(), io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "hostcheck: mount -t binfmt_misc") || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("err = %v", err)
	}
	if len(rec.cmds) != 3 {
		t.Fatalf("ran %d commands, want to stop after mount", len(rec.cmds))
	}
}

func TestFixNotRoot(t *testing.T) {
	rec := &recorder{}
	err := Fix(context.Background(), Options{Runner: rec.run, Geteuid: func() int { return 1000 }}, failing(), io.Discard)
	var nr *NeedRootError
	if !errors.As(err, &nr) || !slices.EqualFunc(nr.Commands, wantPlan(), slices.Equal) {
		t.Fatalf("err = %#v, want *NeedRootError with the plan", err)
	}
	msg := err.Error()
	for _, want := range []string{"hostcheck: ", "rerun as root", "sudo apt-get update && sudo apt-get install -y --no-install-recommends binfmt-support mtools qemu-system-x86 qemu-user-static && sudo mount"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if len(rec.cmds) != 0 {
		t.Errorf("ran %v as non-root", rec.cmds)
	}
}

func TestFixNothingToDo(t *testing.T) {
	rec := &recorder{}
	var out bytes.Buffer
	rs := []Result{{Name: "a", Status: StatusOK}, {Name: "disk-space", Status: StatusWarn, Fix: "free disk space"}}
	if err := Fix(context.Background(), Options{Runner: rec.run, Geteuid: func() int { return 1000 }}, rs, &out); err != nil {
		t.Fatal(err)
	}
	if len(rec.cmds) != 0 || !strings.Contains(out.String(), "nothing to install") || !strings.Contains(out.String(), "disk-space: free disk space") {
		t.Fatalf("ran %v, output %q", rec.cmds, out.String())
	}
}

func TestExecRunner(t *testing.T) {
	var out bytes.Buffer
	err := execRunner(context.Background(), Command{Args: []string{"sh", "-c", "echo $DROVER_T"}, Env: []string{"DROVER_T=hello"}}, &out)
	if err != nil || out.String() != "hello\n" {
		t.Fatalf("err %v, out %q", err, out.String())
	}
	if err := execRunner(context.Background(), Command{Args: []string{"false"}}, io.Discard); err == nil {
		t.Fatal("false succeeded")
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"sh", "-c", "echo 1 > /x", "it's", "", "a=b,c"})
	if want := `sh -c 'echo 1 > /x' 'it'\''s' '' a=b,c`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
