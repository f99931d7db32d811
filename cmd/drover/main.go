// Command drover bakes immutable OS images per server role and rolls them out blue/green.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/internal/fds"
)

func main() {
	// Before anything runs a tool: descriptors inherited from the caller (Packer leaves 3-5 open)
	// must not reach mmdebstrap, whose shell scripts break on them. Without /proc the tools still
	// run, so a failure is only a warning.
	if err := fds.CloseInheritedOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "drover: warning: %v\n", err)
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is main without the process: tests call it with their own writers and read the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, stdout, stderr, os.LookupEnv)
}

func runWith(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	return runApp(newApp(stdout, stderr, env), args)
}

// runApp runs one command line on app and returns its exit code.
func runApp(app *app, args []string) int {
	app.outputFormat = outputFromArgs(args, app.env) // before parsing: a parse error is reported in it
	global := valueFlags(app.Flags)
	if err := checkFlagValues(args, commandValueFlags(app.Commands, valueFlags(app.Flags))); err != nil {
		return report(err, app.outputFormat, app.stdout, app.stderr)
	}
	err := app.Run(intersperse(app.Commands, global, hoistGlobalFlags(args, global)))
	app.runClosers()
	if err == nil {
		return exitOK
	}
	return report(err, app.outputFormat, app.stdout, app.stderr)
}

// report prints a failure as one line with its reason and a hint and returns the exit code. In JSON
// mode the same goes to stdout as an object, so scripts parse one stream.
func report(err error, format string, stdout, stderr io.Writer) int {
	f := classify(err)
	f.reason = dedupePrefixes(f.reason)
	if format == "json" {
		if f.printedJSON {
			return f.code
		}
		out := map[string]any{"ok": false, "error": f.reason, "hint": f.hint, "exit_code": f.code}
		var diags *fleet.Diagnostics
		if errors.As(err, &diags) {
			out["diagnostics"] = diags.JSON() // with their file:line:col, as validate gives them
		}
		writeJSON(stdout, out)
		return f.code
	}
	line := "drover: " + f.reason
	if f.hint != "" {
		line += " (hint: " + f.hint + ")"
	}
	fmt.Fprintln(stderr, line)
	return f.code
}
