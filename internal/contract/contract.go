// Package contract runs the subtests of a provider kind's contract suite (iptest, dnstest,
// computetest, secretstest) the same way: by name, skippable, optionally in parallel, each under its
// own timeout.
package contract

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Case is one subtest: fn gets the subtest and a context that ends at the suite's timeout.
type Case struct {
	Name string
	Fn   func(t *testing.T, ctx context.Context)
}

// Options are what every suite's Options share.
type Options struct {
	Timeout  time.Duration // of each subtest; zero means 30 seconds
	Parallel bool
	Skip     []string // subtest names not to run
}

// Run runs the cases as subtests of t.
func Run(t *testing.T, cases []Case, opts Options) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if slices.Contains(opts.Skip, c.Name) {
				t.Skip("skipped by Options.Skip")
			}
			if opts.Parallel {
				t.Parallel()
			}
			ctx, cancel := context.WithTimeout(t.Context(), opts.Timeout)
			defer cancel()
			c.Fn(t, ctx)
		})
	}
}
