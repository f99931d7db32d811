package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/rollout"
)

// app is the CLI: urfave/cli plus the few things every command shares (output format, fleet loading).
type app struct {
	*cli.App
	stdout, stderr io.Writer
	env            config.LookupEnv
	outputFormat   string
	log            *slog.Logger
	// extraProviders are registered beside the built-in ones (tests add a type of their own).
	extraProviders all.Providers
	reg            *all.Registry
	closers        []func() // run when the command has finished (closeAtExit)
}

// registry is the provider registry, made once.
func (a *app) registry() *all.Registry {
	if a.reg == nil {
		a.reg = all.New(a.env, a.extraProviders)
	}
	return a.reg
}

func newApp(stdout, stderr io.Writer, env config.LookupEnv) *app {
	a := &app{stdout: stdout, stderr: stderr, env: env, outputFormat: "text"}
	a.App = &cli.App{
		Name:  "drover",
		Usage: "bake immutable OS images per server role and roll them out blue/green",
		Description: `drover reads one fleet file (drover.hcl) that declares bases, roles, providers, DNS, failover
IPs, Vault and the state store. It bakes an image per role, boots fresh instances from it, checks
their health, moves traffic to them, and keeps the old ones for an instant rollback.

Start with:  drover doctor        (is this machine ready?)
             drover validate      (is the fleet file right?)`,
		Version:         versionString(),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "fleet", Aliases: []string{"f"}, Value: "drover.hcl", EnvVars: []string{"DROVER_FLEET"},
				Usage: "the fleet file to read"},
			&cli.StringFlag{Name: "state", EnvVars: []string{"DROVER_STATE"},
				Usage: "the state directory (catalog, rollout state, locks); default: .drover next to the fleet file"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", EnvVars: []string{"DROVER_OUTPUT"},
				Usage: "output format: text or json"},
			&cli.StringSliceFlag{Name: "var", Usage: "set a fleet variable, NAME=VALUE (repeatable; also DROVER_VAR_NAME)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"DROVER_LOG"},
				Usage: "log level on stderr: debug, info, warn or error"},
			&cli.DurationFlag{Name: "wait", EnvVars: []string{"DROVER_WAIT"},
				Usage: "how long a command waits for a role's lock held by another drover (such as 10m), printing who holds it; 0 refuses at once, naming the holder"},
		},
		Before: a.before,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError(err.Error(), "see drover --help")
		},
		CommandNotFound: func(c *cli.Context, name string) {
			// urfave/cli prints nothing and returns nil here; the exit code must still say "usage".
			c.App.Metadata["notFound"] = name
		},
		Metadata: map[string]any{},
		Commands: []*cli.Command{
			validateCommand(a),
			buildCommand(a),
			imagesCommand(a),
			planCommand(a),
			rolloutCommand(a),
			ciCommand(a),
			gcCommand(a),
			volumesCommand(a),
			stateCommand(a),
			vaultCommand(a),
			doctorCommand(a),
			versionCommand(a),
			completionCommand(a),
			manCommand(a),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // exit codes are decided by run, not by urfave/cli
	}
	guardCommands(a.Commands, a.OnUsageError, "")
	a.Action = func(c *cli.Context) error {
		if c.Args().First() == "help" { // drover help [COMMAND], as drover [COMMAND] --help
			if c.NArg() > 1 {
				if findCommand(a.Commands, c.Args().Get(1)) == nil {
					return usageError(fmt.Sprintf("unknown command %q", c.Args().Get(1)), "see drover --help for the commands")
				}
				return cli.ShowCommandHelp(c, c.Args().Get(1))
			}
			return cli.ShowAppHelp(c)
		}
		if c.NArg() > 0 {
			return usageError(fmt.Sprintf("unknown command %q", c.Args().First()), "see drover --help for the commands")
		}
		if c.NumFlags() > 0 {
			// Flags and no command: a flag's value may have swallowed the command name.
			return usageError("no command given", "see drover --help for the commands")
		}
		return cli.ShowAppHelp(c)
	}
	a.After = func(c *cli.Context) error {
		if name, ok := c.App.Metadata["notFound"].(string); ok {
			return usageError(fmt.Sprintf("unknown command %q", name), "see drover --help for the commands")
		}
		return nil
	}
	return a
}

func (a *app) before(c *cli.Context) error {
	if c.IsSet("output") {
		a.outputFormat = c.String("output")
	}
	if a.outputFormat != "text" && a.outputFormat != "json" {
		bad := a.outputFormat
		a.outputFormat = "text"
		return usageError(fmt.Sprintf("--output must be text or json, got %q", bad), "use --output json for machine-readable output")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usageError(fmt.Sprintf("--log-level must be debug, info, warn or error, got %q", c.String("log-level")), "")
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// loadFleet reads and validates the fleet file named by --fleet. Diagnostics are printed (text) or
// returned for the JSON envelope by the caller.
func (a *app) loadFleet(c *cli.Context) (*fleet.Fleet, *fleet.Diagnostics, error) {
	vars := map[string]string{}
	for _, kv := range c.StringSlice("var") {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, nil, usageError(fmt.Sprintf("--var %q is not NAME=VALUE", kv), "for example --var domain=lab.example")
		}
		vars[name] = value
	}
	path := c.String("fleet")
	f, diags := fleet.Load(path, fleet.Options{Providers: a.registry(), Deploy: rollout.NewCatalog(nil, nil), Vars: vars, LookupEnv: a.env})
	return f, diags, nil
}

// requireFleet loads the fleet and turns diagnostics into a usage failure, printing them first in
// text mode (commands other than validate need a valid fleet and say so).
func (a *app) requireFleet(c *cli.Context) (*fleet.Fleet, error) {
	f, diags, err := a.loadFleet(c)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		if !a.json() {
			_ = diags.WriteText(a.stderr)
		}
		return nil, &failure{code: exitUsage, err: diags,
			reason: fmt.Sprintf("%s is not valid: %d problem(s)", c.String("fleet"), diags.Errors()),
			hint:   "run drover validate and fix what it reports"}
	}
	return f, nil
}

// stateDir is --state, else the fleet's state_dir, else .drover next to the fleet file.
func (a *app) stateDir(c *cli.Context, f *fleet.Fleet) string {
	if s := c.String("state"); s != "" {
		abs, err := filepath.Abs(s)
		if err == nil {
			return abs
		}
		return s
	}
	if f != nil && f.StateDir != "" {
		return f.StateDir
	}
	dir := filepath.Dir(c.String("fleet"))
	if f != nil {
		dir = f.Dir
	}
	return filepath.Join(dir, ".drover")
}

func (a *app) json() bool { return a.outputFormat == "json" }

// writeJSONLine writes one compact JSON object per line, for event streams.
func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "drover: cannot encode JSON output: %v\n", err)
		return
	}
	fmt.Fprintln(w, string(b))
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "drover: cannot encode JSON output: %v\n", err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
