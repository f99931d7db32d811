package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout"
)

func stateCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "state",
		Usage: "the state store: move this machine's state to the store a team shares",
		Subcommands: []*cli.Command{{
			Name:  "migrate",
			Usage: "copy the local state (rollout records, catalog manifests, published copies) into an etcd store",
			Description: `Copies what this machine's state directory holds into a shared store, so that a team and its CI
runners (with empty disks) see the same rollouts and images:

  rollout records and in-use marks   from the local state file (state.db)
  catalog manifests                  from the catalog (images/*/manifest.json), as catalog/manifests/<hex>
  published copies                   from images/*/published.json, as catalog/published/<hex>

Locks are not copied: a lock belongs to the process that holds it. Disks stay where they are.

--to names the fleet's store block (store "etcd" { ... }, named etcd) or an etcd client URL such as
http://etcd1.example:2379 (several, comma separated; --prefix then sets the key prefix, else
DROVER_ETCD_PREFIX, else drover/; credentials from ETCD_USERNAME and ETCD_PASSWORD).

Every write is a compare-and-swap, and nothing newer is overwritten: a key the store lacks is
created; the same bytes are left; a rollout record replaces the store's only when it is newer (its
updated time, then its number of transitions); a manifest the store has is kept (same identity,
same inputs); published copies are joined, the newer one per compute block and region. Anything
else that differs is a conflict: left alone, listed, and the exit code is 1. Running it again
writes nothing (every key "same", or "kept" where the store's is newer). --dry-run says what it
would do and writes nothing.

Examples:
   drover state migrate --to etcd --dry-run
   drover state migrate --to etcd
   drover state migrate --to http://127.0.0.1:2379 --prefix drover/prod/`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "to", Usage: "the fleet's store block (etcd) or an etcd client URL", Required: true},
				&cli.StringFlag{Name: "prefix", Usage: "with an etcd URL: the key prefix (default drover/)"},
				&cli.BoolFlag{Name: "dry-run", Usage: "say what would be copied, write nothing"},
			},
			Action: a.stateMigrate,
		}},
	}
}

// migrateResult is the outcome of drover state migrate (--output json prints it).
type migrateResult struct {
	From    string                 `json:"from"`
	To      string                 `json:"to"`
	DryRun  bool                   `json:"dry_run"`
	Records []rollout.MigrateItem  `json:"records"`
	Catalog []images.MigrateChange `json:"catalog"`
	Counts  map[string]int         `json:"counts"`
}

func (a *app) stateMigrate(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("state migrate takes no arguments", "drover state migrate --to etcd")
	}
	f, _ := a.optionalFleet(c)
	state := a.stateDir(c, f)
	ctx := c.Context
	dst, where, err := a.migrateTarget(ctx, c, f, state)
	if err != nil {
		return err
	}
	defer dst.Close()
	reg := a.registry()
	srcCfg, _, err := reg.NewConfig(fleet.KindStore, reg.DefaultStore())
	if err != nil {
		return failed(err, "")
	}
	fac, _ := reg.Store(reg.DefaultStore())
	src, err := fac.Open(ctx, srcCfg, config.Env{Name: reg.DefaultStore(), StateDir: state, Lookup: a.env})
	if err != nil {
		return failed(err, "the local state file is damaged or held by another drover; wait for it or check --state")
	}
	defer src.Close()

	res := migrateResult{From: state, To: where, DryRun: c.Bool("dry-run"), Counts: map[string]int{}}
	if !a.json() {
		note := ""
		if res.DryRun {
			note = " (dry run: nothing is written)"
		}
		fmt.Fprintf(a.stdout, "migrating the state in %s to %s%s\n", state, where, note)
	}
	res.Records, err = rollout.MigrateState(ctx, src, dst, res.DryRun)
	if err != nil {
		return failed(err, "what was copied so far stays; run the command again to go on")
	}
	res.Catalog, err = images.OpenCatalog(state).MigrateTo(ctx, dst, res.DryRun)
	if err != nil {
		return failed(err, "what was copied so far stays; run the command again to go on")
	}
	for _, r := range res.Records {
		res.Counts[r.Action]++
	}
	for _, ch := range res.Catalog {
		res.Counts[ch.Action]++
	}
	if a.json() {
		writeJSON(a.stdout, res)
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		for _, r := range res.Records {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Action, r.Key, r.Detail)
		}
		for _, ch := range res.Catalog {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ch.Action, ch.Key, ch.Detail)
		}
		_ = tw.Flush()
		var parts []string
		for _, k := range []string{"copied", "updated", "same", "kept", "conflict"} {
			parts = append(parts, fmt.Sprintf("%d %s", res.Counts[k], k))
		}
		verb := "done"
		if res.DryRun {
			verb = "would be done (dry run)"
		}
		fmt.Fprintf(a.stdout, "%s: %s\n", verb, strings.Join(parts, ", "))
	}
	if n := res.Counts[rollout.MigrateConflict]; n > 0 {
		return &failure{code: exitFailure, printedJSON: a.json(),
			reason: fmt.Sprintf("%d record(s) differ in the store and neither says which is newer: they were left alone", n),
			hint:   "compare them (drover rollout history ROLE on both sides); the store's stay unless you remove them"}
	}
	return nil
}

// migrateTarget opens the store --to names: the fleet's store block by its name, or an etcd URL.
func (a *app) migrateTarget(ctx context.Context, c *cli.Context, f *fleet.Fleet, state string) (store.Store, string, error) {
	to := c.String("to")
	if strings.HasPrefix(to, "http://") || strings.HasPrefix(to, "https://") {
		overlay := map[string]string{"DROVER_ETCD_ENDPOINTS": to}
		if p := c.String("prefix"); p != "" {
			overlay["DROVER_ETCD_PREFIX"] = p
		}
		env := func(k string) (string, bool) {
			if v, ok := overlay[k]; ok {
				return v, true
			}
			return a.env(k)
		}
		reg := all.New(env, a.extraProviders)
		cfg, ok, err := reg.NewConfig(fleet.KindStore, "etcd")
		if !ok {
			return nil, "", errNotAvailable(fleet.KindStore, "etcd")
		}
		if err != nil {
			return nil, "", failed(err, "")
		}
		if v, ok := cfg.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return nil, "", usageError(fmt.Sprintf("--to %s: %v", to, err), "an etcd client URL such as http://127.0.0.1:2379")
			}
		}
		fac, _ := reg.Store("etcd")
		st, err := fac.Open(ctx, cfg, config.Env{Name: "etcd", StateDir: state, Lookup: env})
		if err != nil {
			return nil, "", failed(err, "check the URL and ETCD_USERNAME/ETCD_PASSWORD")
		}
		return st, "etcd " + to, nil
	}
	if c.String("prefix") != "" {
		return nil, "", usageError("--prefix goes with an etcd URL in --to", "the fleet's store block has its own prefix")
	}
	if f == nil || f.Store == nil || f.Store.Name != to {
		return nil, "", usageError(fmt.Sprintf("--to %q is neither the fleet's store block nor an etcd URL", to),
			`add store "etcd" { endpoints = [...] } to the fleet file and use --to etcd, or give --to http://HOST:2379`)
	}
	if f.Store.Type == a.registry().DefaultStore() {
		return nil, "", usageError(fmt.Sprintf("--to %q is the local state file the state is already in", to), "migrate to an etcd store block or URL")
	}
	st, err := a.openStore(ctx, f, state)
	if err != nil {
		return nil, "", failed(err, "the fleet's store block: check that it is reachable")
	}
	return st, fmt.Sprintf("the fleet's store %q (%s)", f.Store.Name, f.Store.Type), nil
}
