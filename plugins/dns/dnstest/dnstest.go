// Package dnstest is the contract suite every dns.Provider passes:
//
//	func TestContract(t *testing.T) {
//		dnstest.Run(t, func(t *testing.T) dnstest.Fixture { ... }, dnstest.Options{})
//	}
//
// A Fixture is a provider over a zone whose test names (under Fixture.Prefix) hold no records yet;
// a provider backed by a real server starts it once and hands out a fresh prefix per subtest.
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/dns"
)

// Fixture is what one subtest works with.
type Fixture struct {
	Provider dns.Provider
	// Prefix is a label under the zone that no other subtest uses, such as "t7"; the suite's names
	// are NAME.Prefix.ZONE. Empty means the names are NAME.ZONE.
	Prefix string
	// Reopen returns a new Provider over the same zone, as a new process would make it; nil skips
	// that subtest.
	Reopen func(t *testing.T) dns.Provider
	// Outside changes a set behind the provider's back (another admin, another tool); nil skips
	// the conflict subtest.
	Outside func(t *testing.T, set dns.RecordSet)
}

// Options adapt the suite to a provider.
type Options struct {
	// Timeout bounds each subtest; zero means 30 seconds.
	Timeout time.Duration
	// Parallel runs subtests in parallel.
	Parallel bool
	// Skip names subtests not to run.
	Skip []string
	// NoAAAA skips the AAAA subtest for providers without IPv6 records.
	NoAAAA bool
}

// Run runs the contract suite; newFixture is called once per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture, opts Options) {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"Set/Missing", testMissing},
		{"Replace/Create", testCreate},
		{"Replace/Again", testAgain},
		{"Replace/Values", testValues},
		{"Replace/TTL", testTTL},
		{"Replace/Delete", testDelete},
		{"Replace/DeleteMissing", testDeleteMissing},
		{"Replace/AAAA", testAAAA},
		{"Replace/Independent", testIndependent},
		{"Precondition/Holds", testPrecondHolds},
		{"Precondition/Empty", testPrecondEmpty},
		{"Precondition/Conflict", testConflict},
		{"Outside/Zone", testOutsideZone},
		{"Concurrent", testConcurrent},
		{"Reopen", testReopen},
		{"Context/Canceled", testCanceled},
	}
	skip := opts.Skip
	if opts.NoAAAA {
		skip = append(slices.Clone(skip), "Replace/AAAA") // the provider has no AAAA records
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			f := newFixture(t)
			tt.fn(&suite{t: t, ctx: ctx, f: f, p: f.Provider})
		}})
	}
	contract.Run(t, cases, contract.Options{Timeout: opts.Timeout, Parallel: opts.Parallel, Skip: skip})
}

type suite struct {
	t   *testing.T
	ctx context.Context
	f   Fixture
	p   dns.Provider
}

// name returns a fully qualified test name under the fixture's prefix.
func (s *suite) name(label string) string {
	if s.f.Prefix != "" {
		label += "." + s.f.Prefix
	}
	return label + "." + s.p.Zone()
}

func (s *suite) set(label, typ string, ttl uint32, values ...string) dns.RecordSet {
	return dns.RecordSet{Name: s.name(label), Type: typ, TTL: ttl, Values: values}
}

func (s *suite) replace(want dns.RecordSet, prev *dns.RecordSet) {
	s.t.Helper()
	if err := s.p.ReplaceSet(s.ctx, want, prev); err != nil {
		s.t.Fatalf("ReplaceSet(%v): %v", want, err)
	}
}

func (s *suite) want(p dns.Provider, want dns.RecordSet) {
	s.t.Helper()
	got, err := p.Set(s.ctx, want.Name, want.Type)
	if err != nil {
		s.t.Fatalf("Set(%s, %s): %v", want.Name, want.Type, err)
	}
	if want.Empty() {
		if !got.Empty() {
			s.t.Fatalf("Set(%s, %s) = %v, want no records", want.Name, want.Type, got)
		}
		return
	}
	if !got.Equal(want) {
		s.t.Fatalf("Set(%s, %s) = %v, want %v", want.Name, want.Type, got, want.Normalize())
	}
	if n := got.Normalize(); !slices.Equal(n.Values, got.Values) || n.Name != got.Name || n.Type != got.Type {
		s.t.Errorf("Set returned %v, not in normal form %v", got, n)
	}
}

func testMissing(s *suite) {
	got, err := s.p.Set(s.ctx, s.name("missing"), "A")
	if err != nil {
		s.t.Fatalf("Set of a missing name: %v", err)
	}
	if !got.Empty() {
		s.t.Fatalf("Set of a missing name = %v, want no records", got)
	}
}

func testCreate(s *suite) {
	w := s.set("www", "A", 60, "192.0.2.2", "192.0.2.1")
	s.replace(w, nil)
	s.want(s.p, w)
}

func testAgain(s *suite) {
	w := s.set("www", "A", 60, "192.0.2.1")
	for range 3 {
		s.replace(w, nil)
		s.want(s.p, w)
	}
}

func testValues(s *suite) {
	blue := s.set("www", "A", 60, "192.0.2.1", "192.0.2.2")
	green := s.set("www", "A", 60, "192.0.2.3", "192.0.2.4", "192.0.2.5")
	s.replace(blue, nil)
	s.replace(green, nil)
	s.want(s.p, green)
	// Back to a set that shares one value with the current one.
	mixed := s.set("www", "A", 60, "192.0.2.4", "192.0.2.1")
	s.replace(mixed, nil)
	s.want(s.p, mixed)
}

func testTTL(s *suite) {
	w := s.set("www", "A", 300, "192.0.2.1")
	s.replace(w, nil)
	w.TTL = 30
	s.replace(w, nil)
	s.want(s.p, w)
}

func testDelete(s *suite) {
	w := s.set("www", "A", 60, "192.0.2.1", "192.0.2.2")
	s.replace(w, nil)
	s.replace(s.set("www", "A", 60), nil)
	s.want(s.p, s.set("www", "A", 60))
}

func testDeleteMissing(s *suite) {
	s.replace(s.set("never", "A", 60), nil)
	s.want(s.p, s.set("never", "A", 60))
}

func testAAAA(s *suite) {
	w := s.set("www", "AAAA", 60, "2001:db8::1", "2001:db8::2")
	s.replace(w, nil)
	s.want(s.p, w)
	// The A set of the same name is a different set.
	s.want(s.p, s.set("www", "A", 60))
}

func testIndependent(s *suite) {
	a := s.set("a", "A", 60, "192.0.2.1")
	b := s.set("b", "A", 60, "192.0.2.2")
	s.replace(a, nil)
	s.replace(b, nil)
	s.replace(s.set("a", "A", 60, "192.0.2.9"), nil)
	s.want(s.p, b)
	s.replace(s.set("a", "A", 60), nil)
	s.want(s.p, b)
}

func testPrecondHolds(s *suite) {
	blue := s.set("www", "A", 60, "192.0.2.1")
	green := s.set("www", "A", 60, "192.0.2.2")
	s.replace(blue, nil)
	got, err := s.p.Set(s.ctx, blue.Name, blue.Type)
	if err != nil {
		s.t.Fatal(err)
	}
	s.replace(green, &got)
	s.want(s.p, green)
}

func testPrecondEmpty(s *suite) {
	w := s.set("new", "A", 60, "192.0.2.1")
	empty := s.set("new", "A", 60)
	s.replace(w, &empty)
	s.want(s.p, w)
	// The name now has records, so "it had none" no longer holds.
	if err := s.p.ReplaceSet(s.ctx, s.set("new", "A", 60, "192.0.2.7"), &empty); !errors.Is(err, dns.ErrConflict) {
		s.t.Fatalf("ReplaceSet with a stale empty precondition: %v, want ErrConflict", err)
	}
	s.want(s.p, w)
}

func testConflict(s *suite) {
	if s.f.Outside == nil {
		s.t.Skip("fixture cannot change records behind the provider")
	}
	blue := s.set("www", "A", 60, "192.0.2.1")
	s.replace(blue, nil)
	seen, err := s.p.Set(s.ctx, blue.Name, blue.Type)
	if err != nil {
		s.t.Fatal(err)
	}
	other := s.set("www", "A", 60, "198.51.100.1")
	s.f.Outside(s.t, other)
	err = s.p.ReplaceSet(s.ctx, s.set("www", "A", 60, "192.0.2.2"), &seen)
	if !errors.Is(err, dns.ErrConflict) {
		s.t.Fatalf("ReplaceSet over an outside change: %v, want ErrConflict", err)
	}
	s.want(s.p, other)
}

func testOutsideZone(s *suite) {
	bad := dns.RecordSet{Name: "www.not-this-zone.invalid.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	if err := s.p.ReplaceSet(s.ctx, bad, nil); err == nil {
		s.t.Fatal("ReplaceSet outside the zone: no error")
	}
	if _, err := s.p.Set(s.ctx, bad.Name, "A"); err == nil {
		s.t.Fatal("Set outside the zone: no error")
	}
}

func testConcurrent(s *suite) {
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for n := range errs {
		wg.Go(func() {
			errs[n] = s.p.ReplaceSet(s.ctx, s.set(fmt.Sprintf("c%d", n), "A", 60, fmt.Sprintf("192.0.2.%d", n+1)), nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.t.Fatalf("concurrent ReplaceSet: %v", err)
	}
	for n := range errs {
		s.want(s.p, s.set(fmt.Sprintf("c%d", n), "A", 60, fmt.Sprintf("192.0.2.%d", n+1)))
	}
}

func testReopen(s *suite) {
	if s.f.Reopen == nil {
		s.t.Skip("fixture cannot reopen")
	}
	w := s.set("www", "A", 60, "192.0.2.1")
	s.replace(w, nil)
	s.want(s.f.Reopen(s.t), w)
}

func testCanceled(s *suite) {
	w := s.set("www", "A", 60, "192.0.2.1")
	s.replace(w, nil)
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	err := s.p.ReplaceSet(ctx, s.set("www", "A", 60, "192.0.2.2"), nil)
	if !errors.Is(err, context.Canceled) {
		s.t.Fatalf("ReplaceSet with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.p.Set(ctx, w.Name, w.Type); !errors.Is(err, context.Canceled) {
		s.t.Fatalf("Set with a canceled context: %v, want context.Canceled", err)
	}
	s.want(s.p, w)
}
