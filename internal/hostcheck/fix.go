package hostcheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// FixPlan returns what fixing results takes: the Debian packages to install
// (sorted, without duplicates) and every command Fix would run, in order:
// apt-get update and apt-get install first, because the extra commands
// (update-binfmts) come from those packages. Results that are ok contribute
// nothing; warnings do, so their packages get installed too.
func FixPlan(results []Result) (packages []string, commands [][]string) {
	var extra [][]string
	seen := map[string]bool{}
	for _, r := range results {
		if r.Status == StatusOK {
			continue
		}
		packages = append(packages, r.Packages...)
		for _, c := range r.Commands {
			if k := shellJoin(c); len(c) > 0 && !seen[k] {
				seen[k] = true
				extra = append(extra, slices.Clone(c))
			}
		}
	}
	slices.Sort(packages)
	packages = slices.Compact(packages)
	if len(packages) > 0 {
		commands = append(commands,
			[]string{"apt-get", "update"},
			append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, packages...))
	}
	return packages, append(commands, extra...)
}

// NeedRootError is returned by Fix when not running as root. It carries the
// commands so the CLI can print them for the user to run with sudo.
type NeedRootError struct {
	Commands [][]string
}

func (e *NeedRootError) Error() string {
	steps := make([]string, len(e.Commands))
	for i, c := range e.Commands {
		steps[i] = "sudo " + shellJoin(c)
	}
	return "hostcheck: fixing the host needs root: rerun as root, or run: " + strings.Join(steps, " && ")
}

// Fix runs FixPlan(results) as root: apt-get update, apt-get install with
// DEBIAN_FRONTEND=noninteractive (so no debconf prompt blocks doctor), then
// the extra commands, echoing each to out before running it through
// opts.Runner. Not as root it runs nothing and returns a *NeedRootError.
// Problems no package or command fixes (KVM, disk space) are listed on out
// with their Fix line. Fix stops at the first failing command; call Run
// again afterwards to see what is left.
func Fix(ctx context.Context, opts Options, results []Result, out io.Writer) error {
	o := opts.withDefaults()
	for _, r := range results {
		if r.Status != StatusOK && len(r.Packages) == 0 && len(r.Commands) == 0 && r.Fix != "" {
			fmt.Fprintf(out, "not fixed automatically: %s: %s\n", r.Name, r.Fix)
		}
	}
	_, cmds := FixPlan(results)
	if len(cmds) == 0 {
		fmt.Fprintln(out, "nothing to install")
		return nil
	}
	if o.Geteuid() != 0 {
		return &NeedRootError{Commands: cmds}
	}
	for _, args := range cmds {
		c := Command{Args: args}
		if args[0] == "apt-get" {
			c.Env = []string{"DEBIAN_FRONTEND=noninteractive"}
		}
		fmt.Fprintf(out, "+ %s\n", shellJoin(args))
		if err := o.Runner(ctx, c, out); err != nil {
			return fmt.Errorf("hostcheck: %s: %w", shellJoin(args), err)
		}
	}
	return nil
}

// execRunner is the real Runner. Stdin stays empty so nothing can wait for
// an answer from the user.
func execRunner(ctx context.Context, c Command, out io.Writer) error {
	if len(c.Args) == 0 {
		return fmt.Errorf("hostcheck: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run() // Fix adds the command line and the prefix
}

// shellJoin renders args as one shell command line, quoting where needed,
// for Fix lines and echoed commands a user may paste.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,@%+-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
