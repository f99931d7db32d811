package main

import (
	"context"
	"encoding/json"
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
	"github.com/drover-dev/drover/images/tree"
	"github.com/drover-dev/drover/plugins/secrets"
)

func buildCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "bake the images of roles whose inputs changed",
		ArgsUsage: "[ROLE...]",
		Description: `Bakes an image per role (all roles when none are named): a Debian tree from mmdebstrap (cached by
suite, mirror, snapshot, architecture and package set), the role's files, commands and playbook
applied without booting, the drover-boot agent, hygiene (no machine-id, host keys, apt lists, logs),
then a GPT disk that boots under UEFI and BIOS, as raw and qcow2, with a manifest and an SBOM.

When the fleet has a vault block and a role declares secrets, the role's secret values are read
from Vault (from its declared paths, with DROVER_SCAN_VAULT_TOKEN or its _FILE when set, else
VAULT_TOKEN) and the scan fails the build if one is in the tree, never printing it. The controller's
token should not be able to read them (drover vault policy): with it, or with no token, the build
goes on and says the values were not checked. Vault unreachable fails the role's build.

An image is named by the sha256 of its inputs (the role's image block, the bytes of its files, the
base, drover's version): a role whose image is already in the catalog is not rebuilt. Its packages
keep the versions the role's newest image got until --refresh asks the mirror again: a role is then
rebuilt exactly when the mirror offers another version of a package its image has (a security
update), and the build says which; drover images diff shows every version that changed. After a
build that added an image, each role keeps its newest images (drover { keep_images = 3 } by default;
0 turns this off) and every image a rollout uses; older ones are removed with their published
copies, as drover images prune does. Images land
in the catalog under the state directory only when complete; an interrupted build (Ctrl-C) cleans up
after itself. Building needs root (mmdebstrap --mode=root and chroot); run drover doctor first.

Examples:
   sudo drover build                 # every role that changed
   sudo drover build web db --jobs 2
   sudo drover build web --force     # rebuild even if up to date
   sudo drover build --refresh       # the weekly rebuild: roles whose packages have updates
   drover build --output json | jq -c 'select(.event=="image")'`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "rebuild even when the image is already in the catalog"},
			refreshFlag,
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 2, Usage: "roles built at the same time"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show the tools' output (always in each image's build.log)"},
			&cli.StringFlag{Name: "agent-dir", EnvVars: []string{"DROVER_BOOT_DIR"}, Usage: "directory with drover-boot-linux-ARCH (default: next to drover)"},
		},
		Action: func(c *cli.Context) error { return a.build(c) },
	}
}

type buildOutcome struct {
	role    string
	result  *rootfs.Result
	err     error
	skipped string
	elapsed time.Duration
	deploys string // the compute blocks the role deploys to
	refresh bool   // built with --refresh: the mirror was asked again
}

func (a *app) build(c *cli.Context) error {
	f, err := a.requireFleet(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newBuildProgress(a.stdout, a.json(), c.Bool("verbose"))
	defer progress.Close()
	roles, opts, done, err := a.buildSetup(ctx, c, f)
	if err != nil {
		return err
	}
	defer done()
	opts.Force, opts.Progress = c.Bool("force"), progress
	ident := rootfs.NewIdentifier(opts) // one catalog read and one question per mirror for all roles

	outcomes := make([]buildOutcome, len(roles))
	sem := make(chan struct{}, c.Int("jobs"))
	var wg sync.WaitGroup
	for i, role := range roles {
		wg.Add(1)
		go func(i int, role *fleet.Role) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			values := func(ctx context.Context) ([]secrets.Secret, error) {
				return a.buildSecretValues(ctx, f, role, progress)
			}
			outcomes[i] = buildRole(ctx, f, role, ident, values)
			a.reportOutcome(progress, outcomes[i])
		}(i, role)
	}
	wg.Wait()
	a.autoPrune(ctx, c, f, outcomes, progress)
	return buildSummary(outcomes, ctx)
}

// buildSetup is what drover build and drover ci share before building: the roles named (all when
// none), --jobs checked, the build options (state, cache, agent, SOURCE_DATE_EPOCH), and the team's
// store when the fleet shares its catalog, so that what is built is recorded there. done closes
// that store.
func (a *app) buildSetup(ctx context.Context, c *cli.Context, f *fleet.Fleet) (roles []*fleet.Role, opts rootfs.Options, done func(), err error) {
	done = func() {}
	if roles, err = selectRoles(f, c.Args().Slice()); err != nil {
		return nil, opts, done, err
	}
	if c.Int("jobs") < 1 {
		return nil, opts, done, usageError(fmt.Sprintf("--jobs must be at least 1, got %d", c.Int("jobs")), "")
	}
	epoch, _, err := rootfs.EpochFromEnv(a.env)
	if err != nil {
		return nil, opts, done, usageError(err.Error(), "unset SOURCE_DATE_EPOCH or give it seconds since 1970")
	}
	agentDir := c.String("agent-dir")
	if agentDir == "" {
		agentDir = rootfs.DefaultAgentDir(a.env)
	}
	cacheDir, _ := a.env("DROVER_CACHE_DIR")
	opts = rootfs.Options{StateDir: a.stateDir(c, f), CacheDir: cacheDir, DroverVersion: versionString(), AgentDir: agentDir,
		Epoch: epoch, Context: ctx, Refresh: c.Bool("refresh"), Logger: a.log}
	if a.sharesCatalog(f) {
		st, err := a.openStore(ctx, f, opts.StateDir)
		if err != nil {
			return nil, opts, done, failed(err, "the fleet's store block names the state store the team's catalog is in: check that it is reachable")
		}
		opts.Store, done = st, func() { st.Close() }
	}
	return roles, opts, done, nil
}

// buildRole builds one role, its request made by ident (shared by the roles of one command). values gives the role's secret values for the scan (Request.Forbidden);
// it is asked only when the image is to be built, not when the catalog has it already.
func buildRole(ctx context.Context, f *fleet.Fleet, role *fleet.Role, ident *rootfs.Identifier, values func(context.Context) ([]secrets.Secret, error)) buildOutcome {
	start := time.Now()
	out := buildOutcome{role: role.Name, refresh: ident.Refresh()}
	if role.Deploy != nil {
		out.deploys = role.Deploy.Compute
	}
	req, err := ident.Request(f, role)
	if errors.Is(err, rootfs.ErrNotYet) {
		out.skipped = err.Error()
		return out
	}
	if err != nil {
		out.err = err
		return out
	}
	if _, cached, err := req.Cached(); err != nil {
		out.err = err
		return out
	} else if values != nil && !cached {
		if req.Forbidden, err = values(ctx); err != nil {
			out.err = err
			return out
		}
	}
	out.result, out.err = rootfs.Build(ctx, req)
	out.elapsed = time.Since(start)
	return out
}

// buildSecretValues reads the role's secret values, which the build's secret scan then looks for in
// the image's tree: only when the fleet has a vault block and the role declares secrets. They are
// read like images scan reads them (roleSecretValues: DROVER_SCAN_VAULT_TOKEN, else VAULT_TOKEN,
// from the role's declared paths). With no token, or a token that may not read them (the
// controller's, by design), the build goes on and says in a note that they were not looked for.
// Any other failure fails the role's build: Vault unreachable (a check the fleet asks for is not
// skipped in silence, nor because of an outage), a token that is not valid, a declared path with
// nothing in it.
func (a *app) buildSecretValues(ctx context.Context, f *fleet.Fleet, role *fleet.Role, p *buildProgress) ([]secrets.Secret, error) {
	if f.Vault == nil || len(role.Image.SecretPaths()) == 0 {
		return nil, nil
	}
	values, note, err := a.roleSecretValues(ctx, f, "", role.Name)
	if err != nil {
		addr := ""
		if ep, ok := f.Vault.Config.(secrets.Endpoint); ok {
			addr = ep.ServerAddress()
		}
		return nil, &secretValuesError{err: err, addr: addr}
	}
	if note != "" {
		p.note(role.Name, "secret values not checked: "+note)
	}
	return values, nil
}

// secretValuesError is a build stopped before it began because the role's secret values could not be
// read; buildSummary gives it its own hint.
type secretValuesError struct {
	err  error
	addr string
}

func (e *secretValuesError) Error() string {
	return "the image's secret scan needs the role's secret values: " + e.err.Error()
}
func (e *secretValuesError) Unwrap() error { return e.err }

func (e *secretValuesError) hint() string {
	if errors.Is(e.err, secrets.ErrNotFound) {
		return "a path the role declares in its secrets holds nothing: write the secret to Vault, or take the path out of the role's secrets"
	}
	return fmt.Sprintf("the build reads the role's secret values from Vault (%s, the vault block's address) to keep them out of the image: "+
		"check that Vault is up and the token (%s, else VAULT_TOKEN) is valid", e.addr, EnvScanToken)
}

// note is a line about a role that is neither a step nor its outcome; with --output json an event
// {"event":"note","role":...,"note":...}.
func (p *buildProgress) note(role, msg string) {
	if p.json {
		b, _ := json.Marshal(struct {
			Event string `json:"event"`
			Role  string `json:"role"`
			Note  string `json:"note"`
		}{"note", role, msg})
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintln(p.out, string(b))
		return
	}
	p.Line(role + ": " + msg)
}

func (a *app) reportOutcome(p *buildProgress, o buildOutcome) {
	switch {
	case a.json() && o.skipped != "":
		p.event(Event{Event: "skipped", Role: o.role, Error: o.skipped})
	case a.json() && o.err != nil:
		p.event(Event{Event: "failed", Role: o.role, Error: o.err.Error()})
	case a.json():
		p.event(Event{Event: "image", Role: o.role, Cached: o.result.Cached, Elsewhere: o.result.Elsewhere, Seconds: o.elapsed.Seconds(), Image: imageSummary(o.result.Manifest)})
	case o.skipped != "":
		p.Line(fmt.Sprintf("%s: skipped: %s", o.role, strings.TrimPrefix(o.skipped, "rootfs: ")))
	case o.err != nil:
		p.Line(fmt.Sprintf("%s: failed: %s", o.role, describeBuildError(o.err)))
	case o.result.Elsewhere:
		p.Line(fmt.Sprintf("%s: up to date (%s, built elsewhere and published on %s: the state store records it)", o.role, o.result.Manifest.Identity, o.deploys))
	case o.result.Cached && o.refresh:
		p.Line(fmt.Sprintf("%s: up to date (%s; the mirror offers the versions of its packages it has)", o.role, o.result.Manifest.Identity))
	case o.result.Cached:
		p.Line(fmt.Sprintf("%s: up to date (%s)", o.role, o.result.Manifest.Identity))
	default:
		m := o.result.Manifest
		p.Line(fmt.Sprintf("%s: built %s in %s (%s)", o.role, m.Identity, round(o.elapsed), artifactSizes(m)))
		if m.Refresh != nil {
			p.Line(fmt.Sprintf("%s: refreshed: %s", o.role, m.Refresh.Summary(5)))
		}
	}
}

func buildSummary(outcomes []buildOutcome, ctx context.Context) error {
	var failedRoles []string
	var first error
	for _, o := range outcomes {
		if o.err != nil {
			failedRoles = append(failedRoles, o.role)
			if first == nil {
				first = o.err
			}
		}
	}
	if len(failedRoles) == 0 {
		return nil
	}
	hint := "drover build --verbose shows the tools' output"
	var se *rootfs.StepError
	if errors.As(first, &se) && se.Log != "" {
		hint = "the build log is kept at " + se.Log + "; drover build --verbose shows the tools' output as it runs"
	}
	var notMade *images.NotMadeError
	var repo *tree.RepositoryError
	switch {
	case errors.As(first, &notMade):
		hint = "make it first: " + notMade.MadeBy
	case errors.As(first, &repo):
		hint = "check the repository block's uri and suite, and that its key is the public key the repository is signed with; nothing was built"
	case ctx.Err() != nil:
		hint = "the build was interrupted; nothing was added to the catalog"
	case strings.Contains(first.Error(), "needs root"):
		hint = "building runs mmdebstrap and chroot: run it as root (sudo drover build)"
	}
	var sve *secretValuesError
	if errors.As(first, &sve) && ctx.Err() == nil {
		hint = sve.hint()
	}
	return &failure{code: exitFailure, err: first, hint: hint,
		reason: fmt.Sprintf("%d of %d role(s) failed (%s): %s", len(failedRoles), len(outcomes), strings.Join(failedRoles, ", "), firstLine(first))}
}

func artifactSizes(m *images.Manifest) string {
	var parts []string
	for _, art := range m.Artifacts {
		parts = append(parts, fmt.Sprintf("%s %s", art.Format, images.HumanBytes(art.Size)))
	}
	return strings.Join(parts, ", ")
}

// describeBuildError says which step failed and why, without repeating the role and the package
// prefixes the error collected on its way up.
func describeBuildError(err error) string {
	var se *rootfs.StepError
	if errors.As(err, &se) {
		return fmt.Sprintf("step %q: %s", se.Step, strings.TrimPrefix(strings.TrimPrefix(se.Err.Error(), "tree: "), se.Step+": "))
	}
	return err.Error()
}

// firstLine is the first line of an error: the failure line of a command stays one line; the tool
// output that follows is in the role's line above and its build log.
func firstLine(err error) string {
	line, _, _ := strings.Cut(describeBuildError(err), "\n")
	return line
}

// selectRoles returns the named roles, or every role; an unknown name is a usage error.
func selectRoles(f *fleet.Fleet, names []string) ([]*fleet.Role, error) {
	if len(names) == 0 {
		return f.Roles, nil
	}
	var out []*fleet.Role
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			return nil, usageError(fmt.Sprintf("%s comes after a role name, where it is taken for one", n), "flags go before role names: drover build --force web")
		}
		r := f.Role(n)
		if r == nil {
			var known []string
			for _, r := range f.Roles {
				known = append(known, r.Name)
			}
			return nil, usageError(fmt.Sprintf("no role %q in %s", n, f.Path), "roles: "+strings.Join(known, ", "))
		}
		out = append(out, r)
	}
	return out, nil
}

// refreshFlag is drover build's and drover ci's --refresh.
var refreshFlag = &cli.BoolFlag{Name: "refresh", Usage: "ask each base's mirror again for its package versions: rebuild the roles whose images have a package it now offers in another version (the weekly security rebuild)"}
