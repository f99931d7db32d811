// Command drover bakes immutable OS images per server role and rolls them out blue/green.
package main

import (
	"fmt"
	"io"
	"os"

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
	app := newApp(stdout, stderr, env)
	err := app.Run(hoistGlobalFlags(args, valueFlags(app.Flags)))
	if err == nil {
		return exitOK
	}
	return report(err, app.outputFormat, stdout, stderr)
}

// report prints a failure as one line with its reason and a hint and returns the exit code. In JSON
// mode the same goes to stdout as an object, so scripts parse one stream.
func report(err error, format string, stdout, stderr io.Writer) int {
	f := classify(err)
	if format == "json" {
		if f.printedJSON {
			return f.code
		}
		writeJSON(stdout, map[string]any{"ok": false, "error": f.reason, "hint": f.hint, "exit_code": f.code})
		return f.code
	}
	line := "drover: " + f.reason
	if f.hint != "" {
		line += " (hint: " + f.hint + ")"
	}
	fmt.Fprintln(stderr, line)
	return f.code
}
