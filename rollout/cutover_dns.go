package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/rollout/health"
)

// DNSVerifier waits until every authoritative server of the provider's zone answers with want
// (asking each one directly, not a resolver), or ctx ends. progress, when not nil, is told about
// each answer. cmd/ supplies one built on plugins/dns/verify.
type DNSVerifier func(ctx context.Context, p dns.Provider, want dns.RecordSet, progress func(server string, served bool)) error

// Snapshotter is a Cutover whose state before the cutover is more than which instances it pointed
// at, such as a DNS record set with its TTL and any records drover did not make. The controller
// keeps the Snapshot in the rollout record before the cutover moves, and a rollback restores
// exactly it instead of pointing the cutover at blue.
type Snapshotter interface {
	// Snapshot returns what the target serves now.
	Snapshot(ctx context.Context) (*CutoverSnapshot, error)
	// Restore makes the target serve snap again, verified. It is idempotent; drain is how long
	// clients may still use what it replaced (its TTL), zero when it changed nothing; note is for
	// the record.
	Restore(ctx context.Context, snap *CutoverSnapshot) (note string, drain time.Duration, err error)
}

// CutoverSnapshot is a Snapshotter's saved state, kept in the rollout record.
type CutoverSnapshot struct {
	Data json.RawMessage `json:"data"`
	// Drain is how long clients may keep using what the target served before the cutover (the old
	// TTL): the watch lasts at least that long, so blue outlives every cached answer.
	Drain Duration `json:"drain"`
}

// dnsCutover sets a name's A and AAAA sets to the green instances' addresses, then waits until every
// authoritative server serves them.
type dnsCutover struct {
	block  string
	p      dns.Provider
	name   string // fully qualified
	ttl    uint32
	comp   compute.Provider
	role   string
	verify DNSVerifier
	wait   time.Duration
	// call bounds each provider call (a read, a change): an API that accepts the connection and
	// never answers fails the step instead of stalling the rollout, with the lock renewed, forever.
	call time.Duration
}

// maxDNSCall is the longest a single dns provider call may take (a Route 53 change waits for
// INSYNC, about a minute); shorter when the whole wait for the servers (Options.DNSWait) is.
const maxDNSCall = 2 * time.Minute

// callCtx is ctx bounded for one provider call.
func (x *dnsCutover) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, x.call)
}

// dnsTypes are the record types a dns cutover manages.
var dnsTypes = []string{"A", "AAAA"}

func (c *Controller) dnsCutover(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error) {
	_, dep, err := c.deployOf(role)
	if err != nil {
		return nil, err
	}
	comp, err := c.opts.Compute(ctx, dep.Compute)
	if err != nil {
		return nil, fmt.Errorf("compute %q: %w", dep.Compute, err)
	}
	x, err := c.dnsName(ctx, spec)
	if err != nil {
		return nil, err
	}
	x.comp, x.role = comp, role
	return x, nil
}

// dnsType is cutover "dns": a name's A and AAAA sets moved to the greens' addresses.
type dnsType struct{ c *Controller }

func (t dnsType) Open(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error) {
	return t.c.dnsCutover(ctx, role, spec)
}

func (dnsType) Describe(spec fleet.Cutover, _ int) CutoverPlan {
	return CutoverPlan{
		Target: fmt.Sprintf("dns %q name %q", spec.DNS, spec.Name),
		Step: fmt.Sprintf("set %s A/AAAA in dns %q to the greens' addresses (ttl %ds), keeping the old sets in the record; wait until every authoritative server serves them",
			orApex(spec.Name), spec.DNS, spec.TTL),
		// Clients may use blue's cached answers for the old TTL: blue must outlive them.
		Watch: "on the green instances (at least as long as the old records' TTL, so blue outlives cached answers)",
	}
}

func orApex(name string) string {
	if name == "" {
		return "@"
	}
	return name
}

// dnsName opens the dns block of spec for its name: the part a dns cutover and an ip cutover's
// published name share.
func (c *Controller) dnsName(ctx context.Context, spec fleet.Cutover) (*dnsCutover, error) {
	if c.opts.DNS == nil {
		return nil, errors.New("no dns providers configured")
	}
	wait := c.opts.DNSWait
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	call := min(wait, maxDNSCall)
	octx, cancel := context.WithTimeout(ctx, call) // opening may ask the API (the zone's ID)
	defer cancel()
	p, err := c.opts.DNS(octx, spec.DNS)
	if err != nil {
		return nil, fmt.Errorf("dns %q: %w", spec.DNS, err)
	}
	name := spec.Name
	switch {
	case name == "" || name == "@":
		name = p.Zone()
	case !strings.HasSuffix(name, "."):
		name = name + "." + p.Zone()
	}
	ttl := spec.TTL
	if ttl <= 0 {
		ttl = 60
	}
	verify := c.opts.VerifyDNS
	if verify == nil {
		verify = readBack
	}
	return &dnsCutover{block: spec.DNS, p: p, name: strings.ToLower(name), ttl: uint32(ttl), verify: verify, wait: wait, call: call}, nil
}

// readBack is the verifier without direct server checks: the provider's own view, polled.
func readBack(ctx context.Context, p dns.Provider, want dns.RecordSet, _ func(string, bool)) error {
	for {
		got, err := p.Set(ctx, want.Name, want.Type)
		if err != nil {
			return err
		}
		if got.SameValues(want) {
			return nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%s %s still serves %v: %w", want.Name, want.Type, got.Values, err)
		}
	}
}

func (x *dnsCutover) Type() string { return "dns" }
func (x *dnsCutover) Target() string {
	return fmt.Sprintf("dns %q %s (ttl %ds)", x.block, x.name, x.ttl)
}

// sets reads the name's A and AAAA sets.
func (x *dnsCutover) sets(ctx context.Context) ([]dns.RecordSet, error) {
	out := make([]dns.RecordSet, 0, len(dnsTypes))
	for _, t := range dnsTypes {
		cctx, cancel := x.callCtx(ctx)
		s, err := x.p.Set(cctx, x.name, t)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading %s %s: %w", x.name, t, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Current maps the addresses the name serves to the role's instances.
func (x *dnsCutover) Current(ctx context.Context) ([]string, error) {
	sets, err := x.sets(ctx)
	if err != nil {
		return nil, err
	}
	all, err := x.comp.Instances(ctx, compute.Selector{LabelRole: x.role})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range all {
		if in.State == compute.Terminated || !in.Address.IsValid() {
			continue
		}
		for _, s := range sets {
			if slices.Contains(s.Values, in.Address.String()) {
				out = append(out, in.ID)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// want returns the sets that send the name to instances.
func (x *dnsCutover) want(to []compute.Instance) []dns.RecordSet {
	addrs := make([]netip.Addr, 0, len(to))
	for _, in := range to {
		addrs = append(addrs, in.Address)
	}
	return x.setsFor(addrs)
}

// setsFor returns the A and AAAA sets of addresses.
func (x *dnsCutover) setsFor(addrs []netip.Addr) []dns.RecordSet {
	a := dns.RecordSet{Name: x.name, Type: "A", TTL: x.ttl}
	aaaa := dns.RecordSet{Name: x.name, Type: "AAAA", TTL: x.ttl}
	for _, ad := range addrs {
		switch {
		case ad.Is4():
			a.Values = append(a.Values, ad.String())
		case ad.Is6():
			aaaa.Values = append(aaaa.Values, ad.String())
		}
	}
	return []dns.RecordSet{a.Normalize(), aaaa.Normalize()}
}

// Point replaces the sets, each with the set it read as precondition so a concurrent change made by
// someone else is refused rather than overwritten, then waits until every authoritative server
// serves them. A failure part way leaves some sets changed; Current shows it and Point again
// finishes.
func (x *dnsCutover) Point(ctx context.Context, to []compute.Instance) (string, error) {
	if len(to) == 0 {
		return "", errors.New("no instance to point at")
	}
	return x.apply(ctx, x.want(to))
}

func (x *dnsCutover) apply(ctx context.Context, want []dns.RecordSet) (string, error) {
	cur, err := x.sets(ctx)
	if err != nil {
		return "", err
	}
	var changed []string
	for i, w := range want {
		if cur[i].Equal(w) || (cur[i].Empty() && w.Empty()) {
			continue
		}
		cctx, cancel := x.callCtx(ctx)
		err := x.p.ReplaceSet(cctx, w, &cur[i])
		cancel()
		if err != nil {
			return "", fmt.Errorf("setting %v: %w", w, err)
		}
		changed = append(changed, w.String())
	}
	start := time.Now()
	vctx, cancel := context.WithTimeout(ctx, x.wait)
	defer cancel()
	for _, w := range want {
		if err := x.verify(vctx, x.p, w, nil); err != nil {
			return "", fmt.Errorf("waiting for every authoritative server to serve %v: %w", w, err)
		}
	}
	if len(changed) == 0 {
		return fmt.Sprintf("%s already served by every authoritative server", x.name), nil
	}
	return fmt.Sprintf("set %s; every authoritative server served it after %s", strings.Join(changed, ", "), human(time.Since(start))), nil
}

func (x *dnsCutover) WatchTargets() []health.Target { return nil }

// dnsSnapshot is what a dns cutover keeps: the sets as they were.
type dnsSnapshot struct {
	Sets []dns.RecordSet `json:"sets"`
}

// Snapshot reads the sets the name serves now; Drain is the longest TTL among them.
func (x *dnsCutover) Snapshot(ctx context.Context) (*CutoverSnapshot, error) {
	sets, err := x.sets(ctx)
	if err != nil {
		return nil, err
	}
	var drain time.Duration
	for _, s := range sets {
		if !s.Empty() {
			drain = max(drain, time.Duration(s.TTL)*time.Second)
		}
	}
	b, err := json.Marshal(dnsSnapshot{Sets: sets})
	if err != nil {
		return nil, err
	}
	return &CutoverSnapshot{Data: b, Drain: Duration(drain)}, nil
}

// Restore puts the saved sets back exactly (values and TTL), verified at every server. The drain is
// the TTL of what it replaced: green's answers may be cached that long.
func (x *dnsCutover) Restore(ctx context.Context, snap *CutoverSnapshot) (string, time.Duration, error) {
	var s dnsSnapshot
	if err := json.Unmarshal(snap.Data, &s); err != nil {
		return "", 0, fmt.Errorf("the saved record sets are not readable: %w", err)
	}
	cur, err := x.sets(ctx)
	if err != nil {
		return "", 0, err
	}
	var drain time.Duration
	for _, old := range s.Sets {
		for _, c := range cur {
			if c.Type == old.Type && !c.Empty() && !c.Equal(old) {
				drain = max(drain, time.Duration(c.TTL)*time.Second)
			}
		}
	}
	want := make([]dns.RecordSet, len(dnsTypes))
	for i, t := range dnsTypes {
		want[i] = dns.RecordSet{Name: x.name, Type: t, TTL: x.ttl}
		for _, old := range s.Sets {
			if old.Type == t {
				want[i] = old
			}
		}
	}
	note, err := x.apply(ctx, want)
	if err != nil {
		return "", 0, err
	}
	return "restored the record sets saved before the cutover: " + note, drain, nil
}
