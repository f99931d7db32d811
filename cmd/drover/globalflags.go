package main

import "strings"

// globalFlags are the app's flags that take a value. urfave/cli only reads them before the command
// name; people type them anywhere (drover validate --fleet x.hcl), as with terraform -chdir or
// kamal -d, so hoistGlobalFlags moves them in front of the command.
var globalFlags = map[string]bool{"--fleet": true, "-f": true, "--state": true, "--output": true, "-o": true, "--var": true, "--log-level": true}

// hoistGlobalFlags returns args with every global flag that follows the command name moved right
// after the program name, in order, values included. Nothing after "--" moves.
func hoistGlobalFlags(args []string) []string {
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
