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
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/rootfs"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/rollout"
)

// exitWaiting is drover ci's exit code when nothing failed and at least one rollout stopped at
// ready, waiting for a person's promote.
const exitWaiting = 3

func ciCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "ci",
		Usage:     "what a pipeline runs on every commit: build what changed, roll it out, report",
		ArgsUsage: "[ROLE...]",
		Description: `On a commit to the fleet's repository, drover ci:
  1. validates the fleet file (a problem stops everything: exit 2);
  2. works out each role's image identity for the fleet as it is now, offline, and compares it
     with the image the role runs (its live rollout) or, for a role without a deploy block, with
     the catalog;
  3. builds the images that a rollout here needs and the catalog lacks, and those of changed
     roles without a deploy block (as drover build does);
  4. starts a rollout of each changed role that has a deploy block (--jobs at a time, each role
     under its own lock), which publishes the image first to a compute target that boots its own
     copy. A role with auto_promote is promoted at once; the others stop at ready, and drover ci
     prints the exact promote and rollback commands;
  5. prints a summary, and writes it as Markdown to --summary (default $GITHUB_STEP_SUMMARY).

A commit that changes no image builds nothing, starts nothing and exits 0, quickly. A role keeps
the package versions of its newest image until --refresh (the weekly run of the pipelines drover
ci init writes) asks each base's mirror again: then exactly the roles whose images have a package
the mirror offers in another version (a security update) are rebuilt and rolled out, and the
summary names the packages. A role whose
rollout is in flight for another image is not touched: it is reported and fails the run.

Exit codes:
  0  every role is up to date, built, or rolled out and promoted
  1  something failed (a build, a rollout, a role blocked by a rollout in flight)
  2  the fleet file or the command line is wrong: nothing was done
  3  nothing failed, and at least one rollout waits at ready for drover rollout promote

With --output json, progress goes to stderr as JSON lines (build and rollout events) and stdout
holds one JSON object: the roles, what happened to each, and the next commands.

Examples:
   drover ci                                  # what the pipeline runs
   drover ci --summary summary.md web db      # only these roles, summary to a file
   drover ci --dry-run                        # say what would be built and rolled out
   drover ci --refresh                        # the weekly run: roles with package updates
   drover ci init github                      # write the pipeline that runs it`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "summary", EnvVars: []string{"GITHUB_STEP_SUMMARY"}, Usage: "append the run's summary, in Markdown, to this file"},
			&cli.BoolFlag{Name: "dry-run", Usage: "decide what would be built and rolled out, do none of it"},
			refreshFlag,
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 2, Usage: "roles built, then rolled out, at the same time"},
			&cli.StringFlag{Name: "agent-dir", EnvVars: []string{"DROVER_BOOT_DIR"}, Usage: "directory with drover-boot-linux-ARCH (default: next to drover)"},
		},
		Subcommands: []*cli.Command{ciInitCommand(a)},
		Action:      func(c *cli.Context) error { return a.ci(c) },
	}
}

// ciRole is what drover ci did with one role.
type ciRole struct {
	Role string `json:"role"`
	// Image is the identity of the role's image for the fleet as it is now ("" when the role
	// cannot be built here).
	Image string `json:"image,omitempty"`
	// Result is one of the ci* results below.
	Result  string `json:"result"`
	Rollout string `json:"rollout,omitempty"`
	State   string `json:"state,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Next are the commands a person runs next (promote and rollback of a rollout at ready).
	Next []string `json:"next,omitempty"`
	// Refresh is what --refresh found: the packages of the role's image the mirror now offers in
	// another version (nil when none, or without --refresh).
	Refresh *images.Refresh `json:"refresh,omitempty"`

	role     *fleet.Role
	build    bool // the image is to be built (not in the catalog)
	rollout  bool // a rollout is to be started
	previous string
}

// The results of a role in a drover ci run.
const (
	ciUpToDate   = "up-to-date"     // nothing changed
	ciBuilt      = "built"          // no deploy block: the image was built
	ciRolledOut  = "rolled-out"     // a rollout started and was promoted
	ciWaiting    = "waiting"        // a rollout stopped at ready: promote by hand
	ciFailed     = "failed"         // build or rollout failed
	ciBlocked    = "blocked"        // another rollout of the role is in flight
	ciSkipped    = "skipped"        // the role cannot be built here (a builder not available yet)
	ciWouldBuild = "would-build"    // --dry-run: the image would be built
	ciWouldStart = "would-roll-out" // --dry-run: a rollout would start
)

func (a *app) ci(c *cli.Context) error {
	started := time.Now()
	f, err := a.requireFleet(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	roles, opts, done, err := a.buildSetup(ctx, c, f)
	if err != nil {
		return err
	}
	defer done()

	// One identifier for deciding and building: the catalog is read and each mirror asked once.
	ident := rootfs.NewIdentifier(opts)
	run, err := a.ciDecide(ctx, c, f, roles, opts, ident)
	if err != nil {
		return err
	}
	if !c.Bool("dry-run") {
		a.ciBuild(ctx, c, f, run, opts, ident)
		if err := a.ciRollouts(ctx, c, run); err != nil {
			return err
		}
	}
	return a.ciReport(c, f, run, time.Since(started))
}

// ciDecide works out each role's image and what is to be done with it, reading the rollout state
// (never changing it) and the catalog.
func (a *app) ciDecide(ctx context.Context, c *cli.Context, f *fleet.Fleet, roles []*fleet.Role, opts rootfs.Options, ident *rootfs.Identifier) ([]*ciRole, error) {
	cat := images.OpenCatalog(opts.StateDir)
	var ctl *rollout.Controller
	for _, r := range roles {
		if r.Deploy != nil {
			var closeFn func()
			var err error
			if ctl, closeFn, err = a.controller(c); err != nil {
				return nil, err
			}
			defer closeFn()
			break
		}
	}
	dry := c.Bool("dry-run")
	run := make([]*ciRole, 0, len(roles))
	for _, r := range roles {
		cr := &ciRole{Role: r.Name, role: r}
		run = append(run, cr)
		req, err := ident.Request(f, r)
		id := req.Identity()
		switch {
		case errors.Is(err, rootfs.ErrNotYet):
			cr.Result, cr.Detail = ciSkipped, err.Error()
			continue
		case err != nil:
			cr.Result, cr.Detail = ciFailed, err.Error()
			continue
		}
		cr.Image, cr.Refresh = id, req.Refresh
		// The disk is built here only when something here needs it: a role without a deploy block
		// (the build is the work), or a rollout to start. A role whose image runs already needs no
		// local disk, whoever built it (a team's runners each have their own catalog).
		cr.build = !cat.Has(id)
		if r.Deploy == nil {
			cr.Result = ciUpToDate
			if cr.build {
				cr.Result = ciBuilt
				if dry {
					cr.Result = ciWouldBuild
				}
			}
			continue
		}
		st, err := ctl.Status(ctx, r.Name)
		if err != nil {
			return nil, failed(err, "the rollout state could not be read; nothing was built or started")
		}
		a.ciDecideRollout(cr, st, dry)
		cr.build = cr.build && cr.rollout
		if cr.Result == ciWouldStart && !cr.build {
			cr.Detail = strings.TrimPrefix(cr.Detail, "the image is built first")
		}
	}
	return run, nil
}

// ciDecideRollout decides what to do with a role that has a deploy block, from its status.
func (a *app) ciDecideRollout(cr *ciRole, st *rollout.Status, dry bool) {
	if st.Live != nil {
		cr.previous = st.Live.Image.Identity
	}
	if act := st.Active; act != nil && act.State != rollout.Promoted {
		cr.Rollout, cr.State = act.ID, string(act.State)
		if act.Image.Identity == cr.Image {
			// A rollout of this very image is in flight (an earlier run stopped at ready, or was
			// killed): start resumes it, or leaves it at ready for a person.
			cr.rollout = true
			if dry {
				cr.Result, cr.Detail = ciWouldStart, "resumes rollout "+act.ID
			}
			return
		}
		cr.Result = ciBlocked
		cr.Detail = fmt.Sprintf("rollout %s of image %s is %s: promote, roll back or abort it first", act.ID, images.ShortID(act.Image.Identity), act.State)
		cr.Next = []string{"drover rollout status " + cr.Role}
		return
	}
	current := cr.previous
	if act := st.Active; act != nil { // promoted, keeping blue: its image is what serves
		current = act.Image.Identity
		cr.Rollout, cr.State = act.ID, string(act.State)
	}
	if current == cr.Image {
		cr.Result = ciUpToDate
		if cr.Rollout == "" && st.Live != nil {
			cr.Rollout, cr.State = st.Live.ID, string(st.Live.State)
		}
		return
	}
	cr.rollout = true
	if dry {
		cr.Result = ciWouldStart
		if cr.build {
			cr.Detail = "the image is built first"
		}
	}
}

// ciBuild builds the images the run needs, as drover build does (with the secret scan), and prunes
// as a build does.
func (a *app) ciBuild(ctx context.Context, c *cli.Context, f *fleet.Fleet, run []*ciRole, opts rootfs.Options, ident *rootfs.Identifier) {
	var todo []*ciRole
	for _, cr := range run {
		if cr.build && cr.Result != ciFailed && cr.Result != ciBlocked && cr.Result != ciSkipped {
			todo = append(todo, cr)
		}
	}
	if len(todo) == 0 {
		return
	}
	out := a.stdout
	if a.json() {
		out = a.stderr // stdout holds the one result object
	}
	progress := newBuildProgress(out, a.json(), false)
	defer progress.Close()
	outcomes := make([]buildOutcome, len(todo))
	sem := make(chan struct{}, c.Int("jobs"))
	var wg sync.WaitGroup
	for i, cr := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			values := func(ctx context.Context) ([]secrets.Secret, error) {
				return a.buildSecretValues(ctx, f, cr.role, progress)
			}
			outcomes[i] = buildRole(ctx, f, cr.role, ident, values)
			a.reportOutcome(progress, outcomes[i])
		}()
	}
	wg.Wait()
	for i, cr := range todo {
		switch o := outcomes[i]; {
		case o.err != nil:
			cr.Result, cr.Detail, cr.rollout = ciFailed, "build: "+firstLine(o.err), false
		case o.skipped == "" && o.result.Manifest.Identity != cr.Image:
			// Only a refresh can get here: the mirror changed between the decision and the build.
			cr.Result, cr.rollout = ciFailed, false
			cr.Detail = fmt.Sprintf("build: made %s, not %s: the mirror changed during the run; run drover ci again", images.ShortID(o.result.Manifest.Identity), images.ShortID(cr.Image))
		case o.skipped != "":
			cr.Result, cr.Detail, cr.rollout = ciSkipped, o.skipped, false
		case cr.role.Deploy == nil:
			cr.Result = ciBuilt
		}
	}
	a.autoPrune(ctx, c, f, outcomes, progress)
}

// ciRollouts starts the rollouts the run decided on, one role after the other.
func (a *app) ciRollouts(ctx context.Context, c *cli.Context, run []*ciRole) error {
	var todo []*ciRole
	for _, cr := range run {
		if cr.rollout && cr.Result == "" {
			todo = append(todo, cr)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	ctl, closeFn, err := a.controller(c)
	if err != nil {
		return err
	}
	defer closeFn()
	// Roles roll out side by side, --jobs at a time: each has its own lock and its own instances,
	// and the controller and the providers are safe for concurrent use.
	sem := make(chan struct{}, c.Int("jobs"))
	var wg sync.WaitGroup
	for _, cr := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				cr.Result, cr.Detail = ciFailed, "interrupted before its rollout started"
				return
			}
			rec, err := ctl.Start(ctx, cr.Role, rollout.StartOptions{Image: cr.Image})
			ciRolloutResult(cr, rec, err)
		}()
	}
	wg.Wait()
	return nil
}

// ciRolloutResult records what a rollout start came to.
func ciRolloutResult(cr *ciRole, rec *rollout.Record, err error) {
	if rec != nil {
		cr.Rollout, cr.State = rec.ID, string(rec.State)
	}
	switch {
	case errors.Is(err, rollout.ErrUpToDate):
		cr.Result = ciUpToDate
	case errors.Is(err, rollout.ErrInProgress):
		cr.Result, cr.Detail = ciBlocked, err.Error()
		cr.Next = []string{"drover rollout status " + cr.Role}
	case err != nil:
		cr.Result, cr.Detail = ciFailed, err.Error()
		if rec != nil && !rec.State.Terminal() {
			cr.Next = []string{"drover rollout status " + cr.Role, "drover rollout start " + cr.Role + "   # resumes it"}
		}
	case rec != nil && rec.State == rollout.Ready:
		cr.Result = ciWaiting
		cr.Next = []string{"drover rollout promote " + cr.Role, "drover rollout rollback " + cr.Role}
	default:
		cr.Result = ciRolledOut
		if rec != nil && rec.State == rollout.Promoted {
			cr.Next = []string{"drover rollout rollback " + cr.Role + "   # while blue is kept"}
		}
	}
}
