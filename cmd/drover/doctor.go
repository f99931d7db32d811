package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/internal/hostcheck"
)

func doctorCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check this machine for what drover needs, and say how to fix what is missing",
		Description: `Checks the tools that baking and the local lab need (qemu-system-x86_64, qemu-img, mmdebstrap,
mkfs.ext4, mtools, mkfs.vfat, sfdisk, OVMF, knot), qemu-user binfmt for arm64 images, whether KVM
really runs a guest (a probe with a time limit: a present /dev/kvm is not enough), and free disk in
the state directory. Every problem comes with the command that fixes it.

With --fix, as root, drover installs the missing Debian packages with apt-get and enables binfmt,
then checks again. Exit code 0 when nothing fails (warnings allowed), 1 otherwise.

Examples:
   drover doctor
   sudo drover doctor --fix
   drover doctor --output json | jq '.checks[] | select(.status != "ok")'`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "fix", Usage: "install what is missing with apt-get (needs root)"},
		},
		Action: func(c *cli.Context) error {
			opts := hostcheck.Options{Dir: a.stateDir(c, nil)}
			results := hostcheck.Run(c.Context, opts)
			if c.Bool("fix") && failing(results) > 0 {
				progress := a.stdout
				if a.json() {
					progress = a.stderr
				}
				if err := hostcheck.Fix(c.Context, opts, results, progress); err != nil {
					var needRoot *hostcheck.NeedRootError
					if errors.As(err, &needRoot) {
						return failed(err, "rerun as root: sudo drover doctor --fix")
					}
					return failed(err, "see the apt-get output above")
				}
				results = hostcheck.Run(c.Context, opts)
			}
			if a.json() {
				writeJSON(a.stdout, map[string]any{"ok": failing(results) == 0, "checks": results})
			} else {
				printChecks(a, results)
			}
			if n := failing(results); n > 0 {
				hint := "run: sudo drover doctor --fix"
				if os.Geteuid() == 0 {
					hint = "run: drover doctor --fix"
				}
				if c.Bool("fix") {
					hint = "apply the fixes listed above by hand"
				}
				return &failure{code: exitFailure, reason: fmt.Sprintf("%d check(s) failed", n), hint: hint, printedJSON: a.json()}
			}
			return nil
		},
	}
}

func failing(results []hostcheck.Result) int {
	n := 0
	for _, r := range results {
		if r.Status == hostcheck.StatusFail {
			n++
		}
	}
	return n
}

func printChecks(a *app, results []hostcheck.Result) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", statusMark(r.Status), r.Name, r.Detail)
	}
	_ = tw.Flush()
	var fixes []string
	for _, r := range results {
		if r.Status != hostcheck.StatusOK && r.Fix != "" {
			fixes = append(fixes, fmt.Sprintf("  %s: %s", r.Name, r.Fix))
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintf(a.stdout, "\nto fix:\n%s\n", strings.Join(fixes, "\n"))
	}
}

func statusMark(s hostcheck.Status) string {
	switch s {
	case hostcheck.StatusOK:
		return "ok"
	case hostcheck.StatusWarn:
		return "WARN"
	}
	return "FAIL"
}
