package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// valueFlags returns the command-line spellings (--name, -n) of the flags that take a value.
// urfave/cli only reads an app's flags before the command name; people type them anywhere (drover
// validate --fleet x.hcl), as with terraform -chdir or kamal -d, so hoistGlobalFlags moves them.
func valueFlags(flags []cli.Flag) map[string]bool {
	out := map[string]bool{}
	for _, f := range flags {
		if _, isBool := f.(*cli.BoolFlag); isBool {
			continue
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				out["-"+n] = true
			} else {
				out["--"+n] = true
			}
		}
	}
	return out
}

// hoistGlobalFlags returns args with every global flag that follows the command name moved right
// after the program name, in order, values included. Nothing after "--" moves.
func hoistGlobalFlags(args []string, globalFlags map[string]bool) []string {
	if len(args) < 2 {
		return args
	}
	var front, rest []string
	seenCommand := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(a, "=")
		if !globalFlags[name] {
			if !strings.HasPrefix(a, "-") {
				seenCommand = true
			}
			rest = append(rest, a)
			continue
		}
		if !seenCommand {
			// Before the command: leave it (and its value) where it is.
			rest = append(rest, a)
			if !hasValue && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		front = append(front, a)
		if !hasValue && i+1 < len(args) {
			i++
			front = append(front, args[i])
		}
	}
	return append(append([]string{args[0]}, front...), rest...)
}
