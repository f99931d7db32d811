package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
)

// outputFromArgs is the output format the command line asks for, read before urfave/cli parses it:
// a failure of the parse itself must already be reported in that format.
func outputFromArgs(args []string, env func(string) (string, bool)) string {
	format := "text"
	if v, ok := env("DROVER_OUTPUT"); ok && v == "json" {
		format = "json"
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		if name != "--output" && name != "-o" && name != "-output" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		if value == "json" || value == "text" {
			format = value
		}
	}
	return format
}

// commandValueFlags returns the spellings of every flag of cmds (and their subcommands) that takes
// a value.
func commandValueFlags(cmds []*cli.Command, into map[string]bool) map[string]bool {
	for _, c := range cmds {
		for k := range valueFlags(c.Flags) {
			into[k] = true
		}
		commandValueFlags(c.Subcommands, into)
	}
	return into
}

// checkFlagValues refuses a flag that takes a value but got none: the last word of the line
// (`drover validate --fleet $UNSET`), an empty one (`--fleet=`, `--fleet ""`), or another flag
// (`--fleet --output json`). urfave/cli would otherwise take the next word, or the command name,
// as the value and print help with exit 0: a CI job would pass.
func checkFlagValues(args []string, flags map[string]bool) error {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		name, value, hasValue := strings.Cut(a, "=")
		if !flags[name] {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return usageError(fmt.Sprintf("%s needs a value", name), "for example "+name+"=VALUE; check that the variable you passed is set")
			}
			i++
			value = args[i]
			if next, _, _ := strings.Cut(value, "="); flags[next] || strings.HasPrefix(value, "--") {
				return usageError(fmt.Sprintf("%s needs a value, got the flag %s", name, value), "for example "+name+"=VALUE")
			}
		}
		if strings.TrimSpace(value) == "" {
			return usageError(fmt.Sprintf("%s needs a value, got an empty one", name), "check that the variable you passed is set")
		}
	}
	return nil
}

// intersperse moves the flags of the command being run in front of its arguments, so
// `drover plan web --image X` means `drover plan --image X web`: urfave/cli stops reading flags
// at the first argument. Global flags have been hoisted before the command already.
func intersperse(cmds []*cli.Command, globalValue map[string]bool, args []string) []string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		if strings.HasPrefix(a, "-") {
			if name, _, hasValue := strings.Cut(a, "="); globalValue[name] && !hasValue {
				i++
			}
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			return args
		}
		if len(cmd.Subcommands) > 0 {
			cmds = cmd.Subcommands
			continue
		}
		own := valueFlags(cmd.Flags)
		var flags, positional []string
		rest := args[i+1:]
		for j := 0; j < len(rest); j++ {
			r := rest[j]
			if r == "--" {
				positional = append(positional, rest[j:]...)
				break
			}
			if !strings.HasPrefix(r, "-") || r == "-" {
				positional = append(positional, r)
				continue
			}
			flags = append(flags, r)
			if name, _, hasValue := strings.Cut(r, "="); own[name] && !hasValue && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		}
		out := append([]string{}, args[:i+1]...)
		return append(append(out, flags...), positional...)
	}
	return args
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// guardCommands gives every command the app's usage-error handling (urfave/cli would print help
// to stdout, which breaks --output json) and refuses arguments a command does not take: a leaf
// command's ArgsUsage says how many ("" none, "ROLE" one, "A B" two, "[ROLE...]" any).
func guardCommands(cmds []*cli.Command, onUsage cli.OnUsageErrorFunc, path string) {
	for _, c := range cmds {
		c.OnUsageError = onUsage
		full := strings.TrimSpace(path + " " + c.Name)
		if len(c.Subcommands) > 0 {
			guardCommands(c.Subcommands, onUsage, full)
			if c.Action == nil {
				c.Action = func(ctx *cli.Context) error {
					if ctx.NArg() > 0 {
						return usageError(fmt.Sprintf("unknown command %q", full+" "+ctx.Args().First()),
							"see drover "+full+" --help for its commands")
					}
					return usageError("drover "+full+" needs a command", "see drover "+full+" --help for its commands")
				}
			}
			continue
		}
		want, exact := argCount(c.ArgsUsage)
		if !exact {
			continue
		}
		before, usage := c.Before, c.ArgsUsage
		c.Before = func(ctx *cli.Context) error {
			if n := ctx.NArg(); n != want {
				return usageError(argCountReason(full, usage, want, n, ctx.Args().Slice()), "see drover "+full+" --help")
			}
			if before != nil {
				return before(ctx)
			}
			return nil
		}
	}
}

// argCount reads how many arguments an ArgsUsage asks for; exact is false for a variable number
// ("[ROLE...]") or alternatives ("IMAGE | --rules"), which the command checks itself.
func argCount(usage string) (n int, exact bool) {
	if strings.ContainsAny(usage, "[.|") {
		return 0, false
	}
	return len(strings.Fields(usage)), true
}

func argCountReason(cmd, usage string, want, got int, args []string) string {
	switch {
	case want == 0:
		return fmt.Sprintf("drover %s takes no arguments, got %q", cmd, strings.Join(args, " "))
	case got < want:
		return fmt.Sprintf("drover %s needs %s", cmd, usage)
	}
	return fmt.Sprintf("drover %s takes %s, got %d arguments: %q", cmd, usage, got, strings.Join(args, " "))
}

// checkRoles refuses role names the fleet does not declare, naming the ones it does.
func checkRoles(f *fleet.Fleet, names []string) error {
	declared := make([]string, 0, len(f.Roles))
	for _, r := range f.Roles {
		declared = append(declared, r.Name)
	}
	sort.Strings(declared)
	for _, n := range names {
		if f.Role(n) != nil {
			continue
		}
		hint := "the fleet declares " + strings.Join(declared, ", ")
		if len(declared) == 0 {
			hint = "the fleet declares no role"
		}
		if best := closest(n, declared); best != "" {
			hint = fmt.Sprintf("did you mean %s? %s", best, hint)
		}
		return usageError(fmt.Sprintf("no role %q in %s", n, f.Path), hint)
	}
	return nil
}

func closest(got string, candidates []string) string {
	if len(got) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(got, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// dedupePrefixes removes a prefix that a chain of wrapped errors repeats
// ("compute \"prod\": compute \"prod\": cannot launch" reads "compute \"prod\": cannot launch").
func dedupePrefixes(msg string) string {
	parts := strings.Split(msg, ": ")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		if i > 0 && p == parts[i-1] {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}
