package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/rootfs"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout"
	"github.com/drover-dev/drover/rollout/health"
)

// controller opens the store and the providers and returns a rollout controller for the fleet.
func (a *app) controller(c *cli.Context) (*rollout.Controller, func(), error) {
	f, err := a.requireFleet(c)
	if err != nil {
		return nil, nil, err
	}
	if strings.Contains(c.Command.ArgsUsage, "ROLE") {
		roles := c.Args().Slice()
		if !strings.Contains(c.Command.ArgsUsage, "ROLE...") && len(roles) > 1 {
			roles = roles[:1] // ROLE VOLUME ...: the rest are not roles
		}
		if err := checkRoles(f, roles); err != nil {
			return nil, nil, err
		}
	}
	state := a.stateDir(c, f)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, nil, failed(err, "check --state")
	}
	st, err := a.openStore(c.Context, f, state)
	if errors.Is(err, store.ErrBusy) {
		return nil, nil, failed(err, "another process holds the state file's lock; wait for it, or stop the process named")
	}
	if err != nil {
		return nil, nil, failed(err, "the state file is damaged or not drover's; move it away or point --state elsewhere")
	}
	if c.Duration("wait") < 0 {
		st.Close()
		return nil, nil, usageError(fmt.Sprintf("--wait must not be negative, got %s", c.Duration("wait")), "for example --wait 10m; 0 refuses at once")
	}
	crash, err := rollout.CrashAfterFromEnv(func(k string) string { v, _ := a.env(k); return v })
	if err != nil {
		st.Close()
		return nil, nil, usageError(err.Error(), "")
	}
	p := a.newProviders(f, state)
	cat := images.OpenCatalog(state)
	if a.sharesCatalog(f) {
		cat.Share(c.Context, st)
	}
	opts := rollout.Options{
		Fleet: f, Store: st, Catalog: cat,
		Compute: p.Compute, IP: p.IP, DNS: p.DNS, VerifyDNS: p.VerifyDNS,
		Logger: a.log, Events: a.rolloutEvents(),
		CrashAfter: crash, CrashExit: func(rollout.State) { os.Exit(137) },
		LockWait: c.Duration("wait"),
		Owner:    a.owner(),
	}
	if cr := newCredentials(f, p); cr != nil {
		opts.Credentials = cr
	}
	opts.BootVolumes = bootVolumes
	opts.CurrentImage = a.currentImage(f, state)
	opts.Raft, opts.RaftNode = a.raftClusters(f), raftNodeData(f)
	ctl, err := rollout.New(opts)
	if err != nil {
		st.Close()
		return nil, nil, failed(err, "")
	}
	return ctl, func() { st.Close() }, nil
}

// owner is how this drover names itself in locks and records: DROVER_OWNER (such as "ci run 42")
// before the default "user@host pid N", so that a lock's holder says which pipeline run holds it
// and a dead process of this host is still recognized (its lock taken over at once).
func (a *app) owner() string {
	if v, ok := a.env("DROVER_OWNER"); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v) + ": " + rollout.DefaultOwner()
	}
	return ""
}

// currentImage says which image drover build makes of a role for the fleet as it is now: what a
// rollout without --image deploys. The agent is found as drover build finds it by default
// (DROVER_BOOT_DIR, else next to drover); a role this drover cannot build falls back to its newest.
func (a *app) currentImage(f *fleet.Fleet, state string) func(role string) (string, error) {
	epoch, _, epochErr := rootfs.EpochFromEnv(a.env)
	id := rootfs.NewIdentifier(rootfs.Options{StateDir: state, DroverVersion: versionString(), AgentDir: rootfs.DefaultAgentDir(a.env), Epoch: epoch})
	return func(role string) (string, error) {
		if epochErr != nil {
			return "", epochErr
		}
		r := f.Role(role)
		if r == nil {
			return "", fmt.Errorf("no role %q in %s", role, f.Path)
		}
		ident, err := id.Identity(f, r)
		if errors.Is(err, rootfs.ErrNotYet) {
			return "", nil
		}
		return ident, err
	}
}

// rolloutEvents prints each transition and step as it happens: a line of text on stdout, or with
// --output json a JSON object a line on stderr, so that stdout holds exactly one JSON object, the
// command's result.
// The controller calls it from several goroutines at once (one per launching slot, per probe), so
// writes are serialized: each event is one whole line.
func (a *app) rolloutEvents() func(rollout.Event) {
	var mu sync.Mutex
	return func(e rollout.Event) {
		mu.Lock()
		defer mu.Unlock()
		if a.json() {
			writeJSONLine(a.stderr, map[string]any{"event": "rollout", "detail": e})
			return
		}
		fmt.Fprintln(a.stdout, e.String())
	}
}

func rolloutCommand(a *app) *cli.Command {
	roleCmd := func(name, usage, description string, run func(context.Context, *rollout.Controller, string, *cli.Context) (*rollout.Record, error), flags ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "ROLE", Description: description, Flags: flags,
			Action: func(c *cli.Context) error {
				role := c.Args().First()
				if role == "" || c.NArg() > 1 {
					return usageError("name one role", "for example: drover rollout "+name+" web")
				}
				ctl, closeFn, err := a.controller(c)
				if err != nil {
					return err
				}
				defer closeFn()
				ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
				defer stop()
				rec, err := run(ctx, ctl, role, c)
				return a.finishRollout(name, role, rec, err)
			},
		}
	}
	return &cli.Command{
		Name:  "rollout",
		Usage: "boot green, check it, move traffic, keep blue for an instant rollback",
		Description: `A rollout is a persisted state machine (planned, booting, checking, ready, cutting-over,
draining, promoted, retired; aborted, rolled-back and failed end it). Every transition is written to
the state store before the next side effect, so a drover that is killed can be run again with the
same command and converges. One rollout per role at a time: a second drover is refused, naming the
holder of the role's lock.`,
		Subcommands: []*cli.Command{
			roleCmd("start", "boot green from the role's image and health-check it (promote at once with auto_promote)",
				"Boots deploy.count instances of the image drover build makes of the role for the fleet as it is\nnow (or --image), waits until every health check passes, and stops at ready; drover rollout\npromote moves traffic. A green that fails its checks is destroyed and never gets traffic. After\na revert in the fleet's files, the older image is rolled out again, whatever was built since.",
				func(ctx context.Context, ctl *rollout.Controller, role string, c *cli.Context) (*rollout.Record, error) {
					opts := rollout.StartOptions{Image: c.String("image"), Force: c.Bool("force")}
					if c.IsSet("auto-promote") {
						v := c.Bool("auto-promote")
						opts.AutoPromote = &v
					}
					return ctl.Start(ctx, role, opts)
				},
				&cli.StringFlag{Name: "image", Usage: "the image to roll out (IMAGE as in drover images show); default the one drover build makes of the fleet as it is now"},
				&cli.BoolFlag{Name: "force", Usage: "roll out even when the role already runs this image"},
				&cli.BoolFlag{Name: "auto-promote", Usage: "promote as soon as green is healthy (overrides the fleet file)"}),
			roleCmd("promote", "move traffic to green, drain, keep blue for keep_old, then destroy it",
				"Points the role's cutover (failover IP) at green, watches the checks through it for deploy.watch\nand rolls back by itself if they fail.",
				func(ctx context.Context, ctl *rollout.Controller, role string, _ *cli.Context) (*rollout.Record, error) {
					return ctl.Promote(ctx, role)
				}),
			roleCmd("rollback", "move traffic back to blue while it is kept; otherwise redeploy the previous image",
				"Within keep_old, blue is still running: traffic moves back at once, without health gates.",
				func(ctx context.Context, ctl *rollout.Controller, role string, _ *cli.Context) (*rollout.Record, error) {
					return ctl.Rollback(ctx, role)
				}),
			roleCmd("abort", "destroy green and keep blue serving", "",
				func(ctx context.Context, ctl *rollout.Controller, role string, _ *cli.Context) (*rollout.Record, error) {
					return ctl.Abort(ctx, role)
				}),
			roleCmd("tick", "finish due work: destroy blue after keep_old, repair what a killed drover left", "",
				func(ctx context.Context, ctl *rollout.Controller, role string, _ *cli.Context) (*rollout.Record, error) {
					return ctl.Tick(ctx, role)
				}),
			{
				Name: "status", Usage: "where the role's rollout stands: states, instances, the cutover, the lock", ArgsUsage: "ROLE",
				Action: func(c *cli.Context) error {
					ctl, closeFn, err := a.controller(c)
					if err != nil {
						return err
					}
					defer closeFn()
					st, err := ctl.Status(c.Context, c.Args().First())
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						writeJSON(a.stdout, st)
						return nil
					}
					return st.WriteText(a.stdout, time.Now())
				},
			},
			{
				Name: "history", Usage: "the role's past rollouts, newest first", ArgsUsage: "ROLE",
				Action: func(c *cli.Context) error {
					ctl, closeFn, err := a.controller(c)
					if err != nil {
						return err
					}
					defer closeFn()
					recs, err := ctl.History(c.Context, c.Args().First())
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						writeJSON(a.stdout, recs)
						return nil
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ROLLOUT\tKIND\tSTATE\tIMAGE\tCREATED\tUPDATED")
					for _, r := range recs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.State, images.ShortID(r.Image.Identity),
							r.Created.Local().Format(time.DateTime), r.Updated.Local().Format(time.DateTime))
					}
					return tw.Flush()
				},
			},
		},
	}
}

// finishRollout turns a command's outcome into output and an exit code.
func (a *app) finishRollout(cmd, role string, rec *rollout.Record, err error) error {
	var locked *rollout.LockedError
	var hf *health.Failure
	switch {
	case errors.Is(err, rollout.ErrUpToDate), errors.Is(err, rollout.ErrNothingToDo):
		msg := strings.TrimPrefix(err.Error(), "rollout: ")
		if a.json() {
			writeJSON(a.stdout, map[string]any{"ok": true, "role": role, "message": msg, "rollout": rec})
		} else {
			fmt.Fprintf(a.stdout, "%s: %s\n", role, msg)
		}
		return nil
	case errors.As(err, &locked):
		return failed(err, "wait for it to finish (--wait DURATION waits for the lock), or check drover rollout status "+role)
	case errors.Is(err, rollout.ErrInProgress):
		return failed(err, "drover rollout status "+role+" shows it; promote or abort it first")
	case errors.Is(err, rollout.ErrVolumeOpPending):
		return failed(err, "run the drover volumes command it names to finish it, then this one again")
	case errors.As(err, &hf):
		if !a.json() {
			fmt.Fprintln(a.stderr, hf.Report())
		}
		return failed(err, "green was destroyed and blue keeps serving; fix the image and build again")
	case err != nil && (rec == nil || rec.State.Terminal()):
		// Nothing in progress was recorded: a rerun starts afresh, it does not resume.
		return failed(err, "nothing is left in progress; fix the cause and run the command again")
	case err != nil:
		return failed(err, "drover rollout status "+role+" shows where it stands; running the same command again resumes it")
	}
	if a.json() {
		writeJSON(a.stdout, map[string]any{"ok": true, "role": role, "rollout": rec})
	} else if rec != nil {
		fmt.Fprintf(a.stdout, "%s: rollout %s is %s (image %s)\n", role, rec.ID, rec.State, images.ShortID(rec.Image.Identity))
	}
	return nil
}

func planCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "what a rollout would do, step by step, without doing it",
		ArgsUsage: "[ROLE...]",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "image", Usage: "plan for this image instead of the one drover build makes of the fleet as it is now"}},
		Action: func(c *cli.Context) error {
			ctl, closeFn, err := a.controller(c)
			if err != nil {
				return err
			}
			defer closeFn()
			plan, err := ctl.Plan(c.Context, c.Args().Slice(), rollout.PlanOptions{Image: c.String("image")})
			if err != nil {
				return failed(err, "")
			}
			if a.json() {
				writeJSON(a.stdout, plan)
				return nil
			}
			return plan.WriteText(a.stdout)
		},
	}
}

func gcCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "find instances, leases and in-use marks that no rollout owns (--apply removes them)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "apply", Usage: "remove what is found (default: only report)"}},
		Action: func(c *cli.Context) error {
			ctl, closeFn, err := a.controller(c)
			if err != nil {
				return err
			}
			defer closeFn()
			rep, err := ctl.GC(c.Context, rollout.GCOptions{Apply: c.Bool("apply")})
			if err != nil {
				return failed(err, "")
			}
			if a.json() {
				writeJSON(a.stdout, rep)
				return nil
			}
			verb := "would remove"
			if rep.Applied {
				verb = "removed"
			}
			for _, i := range rep.Instances {
				fmt.Fprintf(a.stdout, "%s instance %s (%s, role %s): %s\n", verb, i.ID, i.Compute, i.Role, i.Reason)
			}
			for _, l := range rep.Leases {
				fmt.Fprintf(a.stdout, "%s lease %s (held by %s, expired %s)\n", verb, l.Name, l.Owner, l.Expired.Local().Format(time.DateTime))
			}
			for _, m := range rep.Marks {
				fmt.Fprintf(a.stdout, "%s in-use mark of image %s (role %s): %s\n", verb, images.ShortID(m.Identity), m.Role, m.Reason)
			}
			fmt.Fprintf(a.stdout, "%d instance(s), %d lease(s), %d mark(s)", len(rep.Instances), len(rep.Leases), len(rep.Marks))
			if !rep.Applied {
				fmt.Fprint(a.stdout, "; run drover gc --apply to remove them")
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
}
