package main

import (
	"errors"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// Exit codes: what a script can rely on.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and something failed
	exitUsage   = 2 // bad flags, arguments or fleet file: nothing was done
)

// failure is an error the CLI has decided how to present: the exit code and hint live here, in cmd/
// only, never in the packages that produce the errors.
type failure struct {
	code   int
	reason string
	hint   string
	err    error
	// printedJSON is set when the command already wrote its JSON result (with the error in it), so
	// JSON mode prints no second object.
	printedJSON bool
}

func (f *failure) Error() string { return f.reason }
func (f *failure) Unwrap() error { return f.err }

func usageError(reason, hint string) error {
	return &failure{code: exitUsage, reason: reason, hint: hint}
}

func failed(err error, hint string) error {
	return &failure{code: exitFailure, reason: err.Error(), hint: hint, err: err}
}

// classify turns any error into a failure with an exit code and a hint.
func classify(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	var diags *fleet.Diagnostics
	if errors.As(err, &diags) {
		return &failure{code: exitUsage, reason: diags.Error(), hint: "run drover validate to see every problem", err: err}
	}
	msg := err.Error()
	// urfave/cli reports flag and argument problems as plain errors.
	for _, usage := range []string{"flag provided but not defined", "flag needs an argument", "invalid value", "Required flag", "invalid boolean"} {
		if strings.Contains(msg, usage) {
			return &failure{code: exitUsage, reason: msg, hint: "see drover --help", err: err}
		}
	}
	return &failure{code: exitFailure, reason: msg, err: err}
}
