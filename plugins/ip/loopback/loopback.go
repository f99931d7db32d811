package loopback

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/ip"
)

var _ ip.Provider = (*Provider)(nil)

// Provider moves loopback failover addresses between the instances of a
// qemu lab. An address is held by the instance whose user-mode network
// forwards it: for each of the instance's ports, ADDR:PORT on the host
// reaches the same port in the guest. Moving it removes the forwards from
// the old holder and adds them to the new one through the instances' QMP
// monitors, port by port, so each port is unbound only between two monitor
// commands (well under a millisecond here).
//
// The holder is recorded in a file per address under the state directory,
// but only as a hint: Holder believes the monitors ("info usernet"), so a
// move interrupted half way, or a holder that died, is reported as it is.
// Methods are safe for concurrent use within and across processes; Assigns
// take a lock file.
type Provider struct {
	cfg Config
	lab lab
	dir string
}

// New returns the failover IP provider that moves addresses between the
// instances of on, a compute provider whose instances are reached through
// host port forwards (compute.PortForwarder: the lab's qemu), keeping its
// files under stateDir/lab/ip (the same stateDir as the lab's). It manages
// any IPv4 loopback address; cfg.Address is the one the fleet file names.
func New(cfg *Config, on compute.Provider, stateDir string) (*Provider, error) {
	if on == nil {
		return nil, errors.New("loopback: no compute provider to move the address between")
	}
	l, ok := on.(lab)
	if !ok {
		return nil, fmt.Errorf("loopback: compute provider %T has no port forwards to move (the lab's qemu has)", on)
	}
	return newProvider(cfg, l, stateDir)
}

func newProvider(cfg *Config, l lab, stateDir string) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("loopback: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loopback: %w", err)
	}
	if stateDir == "" {
		return nil, errors.New("loopback: empty state directory")
	}
	return &Provider{cfg: *cfg, lab: l, dir: stateDir}, nil
}

// Address is the failover address of the fleet file's block.
func (p *Provider) Address() netip.Addr { return netip.MustParseAddr(p.cfg.Address) }

func checkAddr(ctx context.Context, addr netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("loopback: %w", context.Cause(ctx))
	}
	if !addr.Is4() || !addr.IsLoopback() {
		return fmt.Errorf("loopback: address %v is not an IPv4 loopback address", addr)
	}
	return nil
}

// Holder implements ip.Provider. It asks the recorded holder's monitor
// first and, when that one does not forward addr, every running instance.
func (p *Provider) Holder(ctx context.Context, addr netip.Addr) (string, error) {
	if err := checkAddr(ctx, addr); err != nil {
		return "", err
	}
	ins, err := p.instances(ctx, true)
	if err != nil {
		return "", err
	}
	st, err := p.readState(addr)
	if err != nil {
		return "", err
	}
	h, err := p.find(ctx, addr, ins, st.Instance)
	if err != nil {
		return "", err
	}
	if h.m != nil {
		h.m.Close()
	}
	return h.id, nil
}

// instances lists the lab's instances by ID, without terminated ones, or
// only the running ones.
func (p *Provider) instances(ctx context.Context, runningOnly bool) (map[string]compute.Instance, error) {
	all, err := p.lab.Instances(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("loopback: %w", err)
	}
	out := make(map[string]compute.Instance, len(all))
	for _, in := range all {
		if in.State == compute.Running || (!runningOnly && in.State != compute.Terminated) {
			out[in.ID] = in
		}
	}
	return out, nil
}

// holdsAll reports whether fws forward every port to the same guest port.
func holdsAll(fws []compute.Forward, ports []int) bool {
	for _, port := range ports {
		if !slices.ContainsFunc(fws, func(f compute.Forward) bool { return int(f.Host.Port()) == port && f.GuestPort == port }) {
			return false
		}
	}
	return len(fws) == len(ports)
}

// holder is an instance that forwards an address, with its open monitor and
// its forwards of that address.
type holder struct {
	id  string
	m   compute.ForwardSession
	fws []compute.Forward
}

// find returns the running instance that forwards addr (its monitor left
// open for the caller to close), or a zero holder. It asks hint first.
func (p *Provider) find(ctx context.Context, addr netip.Addr, ins map[string]compute.Instance, hint string) (holder, error) {
	ids := make([]string, 0, len(ins))
	for id := range ins {
		if id != hint {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if _, ok := ins[hint]; ok {
		ids = append([]string{hint}, ids...)
	}
	for _, id := range ids {
		h, err := p.forwardsOf(ctx, id, addr)
		if err != nil {
			return holder{}, err
		}
		if len(h.fws) > 0 {
			return h, nil
		}
		h.m.Close()
	}
	return holder{}, nil
}

// forwardsOf opens id's monitor and reads its forwards of addr.
func (p *Provider) forwardsOf(ctx context.Context, id string, addr netip.Addr) (holder, error) {
	m, err := p.lab.PortForwards(ctx, id)
	if err != nil {
		return holder{}, fmt.Errorf("loopback: %w", err)
	}
	all, err := m.Forwards(ctx)
	if err != nil {
		m.Close()
		return holder{}, fmt.Errorf("loopback: %w", err)
	}
	h := holder{id: id, m: m}
	for _, f := range all {
		if f.Host.Addr() == addr {
			h.fws = append(h.fws, f)
		}
	}
	return h, nil
}

// Assign implements ip.Provider. Under the lock it opens the
// monitors of the new holder and of the current one before changing
// anything, then moves the forwards port by port: remove from the old
// holder, add to the new one. If an add fails, the ports moved so far go
// back to the old holder.
func (p *Provider) Assign(ctx context.Context, addr netip.Addr, instanceID string) error {
	if err := checkAddr(ctx, addr); err != nil {
		return err
	}
	if instanceID == "" {
		return fmt.Errorf("loopback: assigning %s: empty instance ID", addr)
	}
	unlock, err := flock(ctx, p.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	ins, err := p.instances(ctx, false)
	if err != nil {
		return err
	}
	target, ok := ins[instanceID]
	if !ok {
		return fmt.Errorf("loopback: assigning %s to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	if target.State != compute.Running {
		return fmt.Errorf("loopback: assigning %s to %q: the instance is %s, not running", addr, instanceID, target.State)
	}
	st, err := p.readState(addr)
	if err != nil {
		return err
	}
	to, err := p.forwardsOf(ctx, instanceID, addr)
	if err != nil {
		return err
	}
	defer to.m.Close()
	if st.Instance == instanceID && holdsAll(to.fws, target.Ports) {
		return nil // the usual repeat: no other instance can forward these ports
	}
	others := make(map[string]compute.Instance, len(ins))
	for id, in := range ins {
		if id != instanceID && in.State == compute.Running {
			others[id] = in
		}
	}
	from, err := p.find(ctx, addr, others, st.Instance)
	if err != nil {
		return err
	}
	if from.m != nil {
		defer from.m.Close()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("loopback: %w", context.Cause(ctx))
	}
	if err := move(ctx, addr, from, to, target.Ports); err != nil {
		return err
	}
	if st.Instance == instanceID && slices.Equal(st.Ports, target.Ports) {
		return nil
	}
	return p.writeState(addr, state{Address: addr, Instance: instanceID, Ports: target.Ports})
}

// move makes to forward addr:port for every port (and nothing else on
// addr), taking the forwards from "from" when it has them.
func move(ctx context.Context, addr netip.Addr, from, to holder, ports []int) error {
	has := func(fws []compute.Forward, port int) (compute.Forward, bool) {
		for _, f := range fws {
			if int(f.Host.Port()) == port {
				return f, true
			}
		}
		return compute.Forward{}, false
	}
	var all []int
	for _, f := range from.fws {
		all = append(all, int(f.Host.Port()))
	}
	for _, f := range to.fws {
		all = append(all, int(f.Host.Port()))
	}
	all = append(all, ports...)
	slices.Sort(all)
	all = slices.Compact(all)

	var moved []compute.Forward // taken from "from", to give back on failure
	var added []netip.AddrPort
	for _, port := range all {
		host := netip.AddrPortFrom(addr, uint16(port))
		want := slices.Contains(ports, port)
		cur, toHas := has(to.fws, port)
		old, fromHas := has(from.fws, port)
		if fromHas {
			if err := from.m.RemoveForward(ctx, host); err != nil {
				return errors.Join(fmt.Errorf("loopback: moving %s from %s to %s: %w", addr, from.id, to.id, err),
					giveBack(ctx, addr, from, to, moved, added))
			}
			moved = append(moved, old)
		}
		switch {
		case want && toHas && cur.GuestPort != port:
			if err := to.m.RemoveForward(ctx, host); err != nil {
				return fmt.Errorf("loopback: %w", err)
			}
			fallthrough
		case want && !toHas:
			if err := to.m.AddForward(ctx, compute.Forward{Host: host, GuestPort: port}); err != nil {
				return errors.Join(fmt.Errorf("loopback: moving %s to %s: %w", addr, to.id, err),
					giveBack(ctx, addr, from, to, moved, added))
			}
			added = append(added, host)
		case !want && toHas:
			if err := to.m.RemoveForward(ctx, host); err != nil {
				return fmt.Errorf("loopback: %w", err)
			}
		}
	}
	return nil
}

// giveBack undoes a failed move: the ports added to the new holder are
// removed and those taken from the old holder are put back. It runs even
// when ctx is done, because leaving the address with no one is worse.
func giveBack(ctx context.Context, addr netip.Addr, from, to holder, moved []compute.Forward, added []netip.AddrPort) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, host := range added {
		errs = append(errs, to.m.RemoveForward(ctx, host))
	}
	for _, f := range moved {
		errs = append(errs, from.m.AddForward(ctx, f))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loopback: giving %s back to %s: %w", addr, from.id, err)
	}
	return nil
}
