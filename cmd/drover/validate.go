package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func validateCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "decode and check the fleet file",
		Description: `Reads the fleet file (--fleet, default ./drover.hcl), evaluates variables and functions, and
checks every block: types, durations, counts, ports, file paths (relative to the fleet file) and
every reference between blocks (a role's base and compute, a cutover's dns or ip block).
All problems are reported at once with file:line:col. Exit code 0 when the file is valid, 2 when
it is not. Nothing is built or changed.

Examples:
   drover validate
   drover --fleet examples/homelab/drover.hcl validate
   drover --output json validate | jq '.diagnostics[] | .line'`,
		Action: func(c *cli.Context) error {
			f, diags, err := a.loadFleet(c)
			if err != nil {
				return err
			}
			if a.json() {
				out := map[string]any{"ok": !diags.HasErrors(), "fleet": c.String("fleet"), "diagnostics": diags.JSON()}
				if f != nil {
					roles := []string{}
					for _, r := range f.Roles {
						roles = append(roles, r.Name)
					}
					out["roles"] = roles
					out["state_dir"] = a.stateDir(c, f)
				}
				writeJSON(a.stdout, out)
				if diags.HasErrors() {
					return &failure{code: exitUsage, reason: diags.Error(), err: diags, printedJSON: true}
				}
				return nil
			}
			if err := diags.WriteText(a.stderr); err != nil {
				return err
			}
			if diags.HasErrors() {
				return &failure{code: exitUsage, err: diags,
					reason: fmt.Sprintf("%s is not valid: %d problem(s)", c.String("fleet"), diags.Errors()),
					hint:   "fix the problems above; each names its file:line:col"}
			}
			fmt.Fprintf(a.stdout, "%s is valid: %d role(s), %d compute, %d dns, %d ip block(s)\n",
				c.String("fleet"), len(f.Roles), len(f.Compute), len(f.DNS), len(f.IP))
			return nil
		},
	}
}
