package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/rollout/health"
)

// Cutover moves a role's traffic from one set of instances to another. The bluegreen strategy uses
// it for the cutover, for the watch after it and for rollbacks. Its type (CutoverType) opens it;
// types other than the built-in ip, dns and none plug in through Options.Cutovers.
type Cutover interface {
	// Type is the fleet file's cutover type: "ip", "dns", "none".
	Type() string
	// Target names what moves, for humans and records: `ip "front" 127.0.0.100`.
	Target() string
	// Current returns the instance IDs traffic goes to now, as the platform reports it; nil when
	// none or when the cutover cannot tell (none).
	Current(ctx context.Context) ([]string, error)
	// Point sends traffic to instances (given by slot, at least one). It is idempotent: pointing at
	// what is already served changes nothing. It returns a note for the record when it did not use
	// every instance (a failover IP points at one). After a partial failure, Current tells where
	// traffic goes and a retry finishes the move.
	Point(ctx context.Context, to []compute.Instance) (note string, err error)
	// WatchTargets are where the post-cutover watch probes: the public address. nil means the
	// cutover has none, and the watch probes the instances themselves.
	WatchTargets() []health.Target
}

// CutoverType is a kind of cutover block: it opens the Cutover of a role (which asks its providers)
// and describes what that cutover would do without opening anything, for Plan, which never asks a
// provider. Implementations are safe for concurrent use.
type CutoverType interface {
	// Open builds a role's Cutover from its cutover block.
	Open(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error)
	// Describe says, for people, what the cutover of spec does to a rollout of count instances.
	Describe(spec fleet.Cutover, count int) CutoverPlan
}

// CutoverPlan is a cutover's own part of a plan.
type CutoverPlan struct {
	Target string // what moves: `ip "front"`
	Step   string // the cutover step
	Watch  string // where the post-cutover watch probes: "through the failover IP"
}

// builtinCutovers are the cutover types every controller has. c opens providers and may be nil
// for a catalog that only names and describes them.
func builtinCutovers(c *Controller) map[string]CutoverType {
	return map[string]CutoverType{"ip": ipType{c}, "dns": dnsType{c}, "none": noneType{}}
}

// ipType is cutover "ip": a failover IP moved to the first instance.
type ipType struct{ c *Controller }

func (t ipType) Open(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error) {
	return t.c.ipCutover(ctx, role, spec)
}

func (ipType) Describe(spec fleet.Cutover, count int) CutoverPlan {
	step := fmt.Sprintf("move failover IP %q to the first green", spec.IP)
	if count > 1 {
		step += fmt.Sprintf(" (it points at one instance; the other %d take no traffic through it)", count-1)
	}
	if spec.DNS != "" {
		step += fmt.Sprintf("; keep %s in dns %q pointing at the failover address (ttl %ds)", spec.Name, spec.DNS, spec.TTL)
	}
	return CutoverPlan{Target: fmt.Sprintf("ip %q", spec.IP), Step: step, Watch: "through the failover IP"}
}

// noneType is cutover "none": traffic is moved by hand.
type noneType struct{}

func (noneType) Open(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error) {
	return noneCutover(ctx, role, spec)
}

func (noneType) Describe(fleet.Cutover, int) CutoverPlan {
	return CutoverPlan{Target: "none", Step: "cutover none: move traffic by hand; promote only records it", Watch: "on the green instances"}
}

// ipCutover moves a failover IP (ip.Provider) to the first instance.
type ipCutover struct {
	name string
	addr netip.Addr
	p    ip.Provider
	// publish, when set, keeps a DNS name pointing at the failover address.
	publish *dnsCutover
}

func (c *Controller) ipCutover(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error) {
	if c.opts.IP == nil {
		return nil, errors.New("no failover IP providers configured")
	}
	p, addr, err := c.opts.IP(ctx, spec.IP)
	if err != nil {
		return nil, fmt.Errorf("ip %q: %w", spec.IP, err)
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("ip %q: no address", spec.IP)
	}
	x := &ipCutover{name: spec.IP, addr: addr, p: p}
	if spec.DNS != "" {
		if x.publish, err = c.dnsName(ctx, spec); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (x *ipCutover) Type() string   { return "ip" }
func (x *ipCutover) Target() string { return fmt.Sprintf("ip %q %s", x.name, x.addr) }

func (x *ipCutover) Current(ctx context.Context) ([]string, error) {
	id, err := x.p.Holder(ctx, x.addr)
	if err != nil || id == "" {
		return nil, err
	}
	return []string{id}, nil
}

func (x *ipCutover) Point(ctx context.Context, to []compute.Instance) (string, error) {
	if len(to) == 0 {
		return "", errors.New("no instance to point at")
	}
	if err := x.p.Assign(ctx, x.addr, to[0].ID); err != nil {
		return "", err
	}
	var notes []string
	if len(to) > 1 {
		notes = append(notes, fmt.Sprintf("failover IP %s points at one instance: chose the first, slot %d (%s); the other %d take no traffic through it",
			x.addr, slotOf(to[0]), to[0].ID, len(to)-1))
	}
	if x.publish != nil {
		// The address does not change with the cutover, so this only writes the first time (or
		// after someone changed the name); it is verified every time.
		note, err := x.publish.apply(ctx, x.publish.setsFor([]netip.Addr{x.addr}))
		if err != nil {
			return strings.Join(notes, "; "), fmt.Errorf("publishing %s as %s in dns %q: %w", x.addr, x.publish.name, x.publish.block, err)
		}
		notes = append(notes, "published: "+note)
	}
	return strings.Join(notes, "; "), nil
}

func (x *ipCutover) WatchTargets() []health.Target {
	return []health.Target{{Name: "failover " + x.addr.String(), Addr: x.addr}}
}

// manualCutover is cutover "none": the cutover is run by hand, promote only records it.
type manualCutover struct{}

func noneCutover(context.Context, string, fleet.Cutover) (Cutover, error) {
	return manualCutover{}, nil
}

func (manualCutover) Type() string                              { return "none" }
func (manualCutover) Target() string                            { return "none (traffic is moved by hand)" }
func (manualCutover) Current(context.Context) ([]string, error) { return nil, nil }
func (manualCutover) WatchTargets() []health.Target             { return nil }
func (manualCutover) Point(context.Context, []compute.Instance) (string, error) {
	return "cutover none: nothing moved; traffic is moved by hand", nil
}
