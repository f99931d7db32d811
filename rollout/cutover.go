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
// it for the cutover, for the watch after it and for rollbacks; types other than ip and none (dns)
// plug in through Options.Cutovers.
type Cutover interface {
	// Type is the fleet file's cutover type: "ip", "none", later "dns".
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

// CutoverFactory builds a role's Cutover from its cutover block.
type CutoverFactory func(ctx context.Context, role string, spec fleet.Cutover) (Cutover, error)

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
