// Command importcheck fails when a package imports against the direction DESIGN.md §2 sets.
package main

import (
	"fmt"
	"os"

	"github.com/drover-dev/drover/ci/importcheck"
)

func main() {
	module, pkgs, err := importcheck.List(".", "./...")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	violations := importcheck.Check(module, pkgs)
	for _, v := range violations {
		fmt.Println(v)
	}
	if len(violations) > 0 {
		fmt.Fprintf(os.Stderr, "importcheck: %d import(s) against DESIGN.md §2\n", len(violations))
		os.Exit(1)
	}
	fmt.Printf("importcheck: %d packages follow the import rules\n", len(pkgs))
}
