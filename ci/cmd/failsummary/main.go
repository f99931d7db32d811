// Command failsummary prints, for each test that failed in a go test log, the last things it
// logged, so that they end the output CI keeps (go tool task test runs it when a go test fails).
//
//	failsummary LOG
package main

import (
	"fmt"
	"os"

	"github.com/drover-dev/drover/ci/failsummary"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: failsummary LOG (the text output of go test)")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "failsummary:", err)
		os.Exit(1)
	}
	defer f.Close()
	failures, err := failsummary.Read(f, 6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failsummary: reading", os.Args[1]+":", err)
		os.Exit(1)
	}
	failsummary.Write(os.Stdout, failures)
}
