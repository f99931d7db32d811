// Package computetest is the contract suite every compute.Provider passes:
//
//	func TestContract(t *testing.T) {
//		computetest.Run(t, func(t *testing.T) compute.Provider { return memory.New() }, computetest.Options{})
//	}
//
// The suite launches real instances of whatever the provider makes, so a
// slow provider (qemu) passes a cheap Image, longer timeouts and a lower
// Concurrency, or skips subtests by name. Every instance a subtest launches
// carries a label unique to the run and is terminated in t.Cleanup.
//
// Providers that implement compute.Publisher also pass RunPublisher, which
// publishes, looks up, interrupts and unpublishes images of its own.
package computetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/compute"
)

// Options adapt the suite to a provider.
type Options struct {
	// Image is what every subtest launches. Providers that boot local files
	// need a real file; it need not boot for the suite to pass.
	Image compute.Image
	// Ports given to every launched instance; nil means []int{80}.
	Ports []int
	// Timeout bounds each subtest; zero means 30 seconds.
	Timeout time.Duration
	// Concurrency is how many launches the Concurrent subtests race; zero
	// means 8.
	Concurrency int
	// Parallel runs subtests in parallel, each with its own provider.
	Parallel bool
	// Skip names subtests not to run, such as "Concurrent/DistinctTokens",
	// for the reduced set of a slow provider.
	Skip []string
	// LateCreates says the platform has no idempotency token for creates, so
	// a create the client gave up on may still be applied after a retry made
	// the token's instance (Vultr, DigitalOcean). The suite then accepts such
	// a late instance if it is found by its labels and a further Launch of the
	// token still returns the retry's instance.
	LateCreates bool
}

// Run runs the contract suite. newProvider is called once per subtest; the
// providers it returns may share state (the same cloud account), which the
// suite copes with by labelling what it launches.
func Run(t *testing.T, newProvider func(t *testing.T) compute.Provider, opts Options) {
	t.Helper()
	if opts.Ports == nil {
		opts.Ports = []int{80}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 8
	}
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"Launch/Basic", testLaunch},
		{"Launch/Idempotent", testIdempotent},
		{"Launch/SpecCopied", testSpecCopied},
		{"Launch/Invalid", testInvalid},
		{"Launch/TokenOutlivesTerminate", testTokenOutlivesTerminate},
		{"Instances/Selectors", testSelectors},
		{"Instances/ResultsCopied", testResultsCopied},
		{"Terminate/Twice", testTerminateTwice},
		{"Terminate/Unknown", testTerminateUnknown},
		{"Concurrent/DistinctTokens", testDistinctTokens},
		{"Concurrent/SameToken", testSameToken},
		{"Context/Canceled", testCanceled},
		{"Stopper", testStopper},
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			s := &suite{t: t, p: newProvider(t), opts: opts, ctx: ctx, run: runID()}
			tt.fn(s)
		}})
	}
	contract.Run(t, cases, contract.Options{Timeout: opts.Timeout, Parallel: opts.Parallel, Skip: opts.Skip})
}

// suite is one subtest's provider and helpers.
type suite struct {
	t    *testing.T
	p    compute.Provider
	opts Options
	ctx  context.Context
	run  string // the value of the "drover-test" label on everything launched
	n    int
}

func runID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// spec returns a Spec with a fresh token, the run label and extra labels.
func (s *suite) spec(labels ...string) compute.Spec {
	s.n++
	l := map[string]string{"drover-test": s.run}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return compute.Spec{
		Token:    s.run + "-" + strconv.Itoa(s.n),
		Name:     "computetest-" + strconv.Itoa(s.n),
		Image:    s.opts.Image,
		Labels:   l,
		Ports:    slices.Clone(s.opts.Ports),
		UserData: []byte("computetest " + s.run),
	}
}

// launch launches spec, fails the test on error and terminates the instance
// when the test ends.
func (s *suite) launch(spec compute.Spec) compute.Instance {
	s.t.Helper()
	in, err := s.p.Launch(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("Launch(token %q): %v", spec.Token, err)
	}
	s.cleanup(in.ID)
	return in
}

func (s *suite) cleanup(id string) {
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		if err := s.p.Terminate(ctx, id); err != nil {
			s.t.Errorf("cleanup: Terminate(%q): %v", id, err)
		}
	})
}

// list returns the run's instances matching the extra labels.
func (s *suite) list(labels ...string) []compute.Instance {
	s.t.Helper()
	sel := compute.Selector{"drover-test": s.run}
	for i := 0; i+1 < len(labels); i += 2 {
		sel[labels[i]] = labels[i+1]
	}
	ins, err := s.p.Instances(s.ctx, sel)
	if err != nil {
		s.t.Fatalf("Instances(%v): %v", sel, err)
	}
	return ins
}

// live drops terminated instances.
func live(ins []compute.Instance) []compute.Instance {
	return slices.DeleteFunc(slices.Clone(ins), func(in compute.Instance) bool { return in.State == compute.Terminated })
}

func ids(ins []compute.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	slices.Sort(out)
	return out
}
