// Package contract runs the subtests of a provider kind's contract suite (iptest, dnstest,
// computetest, secretstest) the same way: by name, skippable, optionally in parallel, each under its
// own timeout.
package contract

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/config"
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

// FromFactory returns a suite's provider constructor that opens providers the way drover does:
// through the type's factory, with its default config from env.Lookup, changed by configure (nil
// leaves the defaults), then Open. So a suite runs from a factory, as restic's suites do, and tests
// the factory's wiring too. env.StateDir, when empty, is a fresh directory per provider.
func FromFactory[P any](f config.Factory[P], configure func(cfg any), env config.Env) func(t *testing.T) P {
	if env.Lookup == nil {
		env.Lookup = func(string) (string, bool) { return "", false }
	}
	return func(t *testing.T) P {
		t.Helper()
		e := env // the suite may call this from parallel subtests: env is only read
		if e.StateDir == "" {
			e.StateDir = t.TempDir()
		}
		if !f.Available() {
			t.Fatalf("the %s factory cannot open providers (not available yet)", f.Type)
		}
		cfg, err := f.NewConfig(e.Lookup)
		if err != nil {
			t.Fatalf("%s: NewConfig: %v", f.Type, err)
		}
		if configure != nil {
			configure(cfg)
		}
		p, err := f.Open(t.Context(), cfg, e)
		if err != nil {
			t.Fatalf("%s: Open: %v", f.Type, err)
		}
		return p
	}
}
