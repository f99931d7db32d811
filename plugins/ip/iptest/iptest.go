// Package iptest is the contract suite every ip.Provider passes:
//
//	func TestContract(t *testing.T) {
//		iptest.Run(t, func(t *testing.T) iptest.Fixture { ... }, iptest.Options{})
//	}
//
// A Fixture is a provider with instances to move addresses between; the
// suite never launches instances itself, so a provider backed by real
// machines boots them once and hands out fresh addresses per subtest.
package iptest

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/ip"
)

// Fixture is what one subtest works with.
type Fixture struct {
	Provider ip.Provider
	// Addrs are addresses the provider may assign, held by no one yet: at
	// least one, two for the subtests about independent addresses.
	Addrs []netip.Addr
	// Instances are at least two instances that can hold the addresses.
	Instances []string
	// Unknown is an instance ID Assign must refuse with
	// ip.ErrUnknownInstance; "" skips that subtest.
	Unknown string
	// Reopen returns a new Provider over the same state, as a new process
	// would make it; nil skips that subtest.
	Reopen func(t *testing.T) ip.Provider
	// Kill makes an instance go away, as a terminated or crashed one does;
	// nil skips that subtest.
	Kill func(t *testing.T, id string)
	// OneAddressPerInstance says an instance holds at most one of the
	// provider's addresses, so that assigning it a second takes the first
	// away (an EC2 Elastic IP is associated with the instance's primary
	// private address). The independence subtest then checks that instead.
	OneAddressPerInstance bool
}

// Options adapt the suite to a provider: each subtest's Timeout (zero means 30 seconds), Parallel
// and the subtests to Skip, as every contract suite takes them.
type Options = contract.Options

// Run runs the contract suite; newFixture is called once per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture, opts Options) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"Holder/Unassigned", testUnassigned},
		{"Assign/First", testFirst},
		{"Assign/Again", testAgain},
		{"Assign/Move", testMove},
		{"Assign/Independent", testIndependent},
		{"Assign/Unknown", testUnknown},
		{"Assign/Invalid", testInvalid},
		{"Concurrent", testConcurrent},
		{"Reopen", testReopen},
		{"HolderGone", testHolderGone},
		{"Context/Canceled", testCanceled},
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			f := newFixture(t)
			if len(f.Addrs) < 1 || len(f.Instances) < 2 {
				t.Fatalf("fixture has %d addresses and %d instances, want at least 1 and 2", len(f.Addrs), len(f.Instances))
			}
			tt.fn(&suite{t: t, ctx: ctx, f: f, p: f.Provider})
		}})
	}
	contract.Run(t, cases, opts)
}

type suite struct {
	t   *testing.T
	ctx context.Context
	f   Fixture
	p   ip.Provider
}

func (s *suite) assign(addr netip.Addr, id string) {
	s.t.Helper()
	if err := s.p.Assign(s.ctx, addr, id); err != nil {
		s.t.Fatalf("Assign(%v, %q): %v", addr, id, err)
	}
}

func (s *suite) wantHolder(p ip.Provider, addr netip.Addr, want string) {
	s.t.Helper()
	got, err := p.Holder(s.ctx, addr)
	if err != nil {
		s.t.Fatalf("Holder(%v): %v", addr, err)
	}
	if got != want {
		s.t.Fatalf("Holder(%v) = %q, want %q", addr, got, want)
	}
}

func testUnassigned(s *suite) {
	for _, a := range s.f.Addrs {
		s.wantHolder(s.p, a, "")
	}
}

func testFirst(s *suite) {
	a, i0 := s.f.Addrs[0], s.f.Instances[0]
	s.assign(a, i0)
	s.wantHolder(s.p, a, i0)
}

func testAgain(s *suite) {
	a, i0 := s.f.Addrs[0], s.f.Instances[0]
	for range 3 {
		s.assign(a, i0)
		s.wantHolder(s.p, a, i0)
	}
}

func testMove(s *suite) {
	a, i0, i1 := s.f.Addrs[0], s.f.Instances[0], s.f.Instances[1]
	for _, id := range []string{i0, i1, i1, i0, i1} {
		s.assign(a, id)
		s.wantHolder(s.p, a, id)
	}
}

func testIndependent(s *suite) {
	if len(s.f.Addrs) < 2 {
		s.t.Skip("fixture has one address")
	}
	a0, a1, i0, i1 := s.f.Addrs[0], s.f.Addrs[1], s.f.Instances[0], s.f.Instances[1]
	s.assign(a0, i0)
	s.assign(a1, i1)
	s.wantHolder(s.p, a0, i0)
	s.wantHolder(s.p, a1, i1)
	s.assign(a0, i1)
	s.wantHolder(s.p, a0, i1)
	if s.f.OneAddressPerInstance {
		s.wantHolder(s.p, a1, "") // i1 held a1; taking a0 took a1 away
	} else {
		s.wantHolder(s.p, a1, i1)
	}
	s.assign(a1, i0)
	s.wantHolder(s.p, a0, i1)
	s.wantHolder(s.p, a1, i0)
}

func testUnknown(s *suite) {
	if s.f.Unknown == "" {
		s.t.Skip("fixture has no unknown instance")
	}
	a, i0 := s.f.Addrs[0], s.f.Instances[0]
	s.assign(a, i0)
	if err := s.p.Assign(s.ctx, a, s.f.Unknown); !errors.Is(err, ip.ErrUnknownInstance) {
		s.t.Errorf("Assign(%v, %q): %v, want ErrUnknownInstance", a, s.f.Unknown, err)
	}
	s.wantHolder(s.p, a, i0)
}

func testInvalid(s *suite) {
	a, i0 := s.f.Addrs[0], s.f.Instances[0]
	if err := s.p.Assign(s.ctx, netip.Addr{}, i0); err == nil {
		s.t.Error("Assign of the zero address: no error")
	}
	if err := s.p.Assign(s.ctx, a, ""); err == nil {
		s.t.Error("Assign to an empty instance ID: no error")
	}
	if _, err := s.p.Holder(s.ctx, netip.Addr{}); err == nil {
		s.t.Error("Holder of the zero address: no error")
	}
	s.wantHolder(s.p, a, "")
}

func testConcurrent(s *suite) {
	a, i0, i1 := s.f.Addrs[0], s.f.Instances[0], s.f.Instances[1]
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for n := range errs {
		wg.Go(func() { errs[n] = s.p.Assign(s.ctx, a, s.f.Instances[n%2]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.t.Fatalf("concurrent Assign: %v", err)
	}
	got, err := s.p.Holder(s.ctx, a)
	if err != nil || (got != i0 && got != i1) {
		s.t.Fatalf("after concurrent Assigns: Holder = %q, %v; want %q or %q", got, err, i0, i1)
	}
	s.assign(a, i1)
	s.wantHolder(s.p, a, i1)
}

func testReopen(s *suite) {
	if s.f.Reopen == nil {
		s.t.Skip("fixture cannot reopen its provider")
	}
	a, i1 := s.f.Addrs[0], s.f.Instances[1]
	s.assign(a, i1)
	s.wantHolder(s.f.Reopen(s.t), a, i1)
}

func testHolderGone(s *suite) {
	if s.f.Kill == nil {
		s.t.Skip("fixture cannot kill instances")
	}
	a, i0, i1 := s.f.Addrs[0], s.f.Instances[0], s.f.Instances[1]
	s.assign(a, i0)
	s.f.Kill(s.t, i0)
	s.wantHolder(s.p, a, "")
	s.assign(a, i1)
	s.wantHolder(s.p, a, i1)
}

func testCanceled(s *suite) {
	a, i0, i1 := s.f.Addrs[0], s.f.Instances[0], s.f.Instances[1]
	s.assign(a, i0)
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	if err := s.p.Assign(ctx, a, i1); !errors.Is(err, context.Canceled) {
		s.t.Errorf("Assign with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.p.Holder(ctx, a); !errors.Is(err, context.Canceled) {
		s.t.Errorf("Holder with a canceled context: %v, want context.Canceled", err)
	}
	s.wantHolder(s.p, a, i0)
}
