package loopback

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/iptest"
)

// fakeLab simulates instances' user-mode networks: a host address and port
// can be forwarded by one instance at a time, like a bound socket.
type fakeLab struct {
	mu      sync.Mutex
	ins     map[string]*compute.Instance
	fws     map[string][]compute.Forward
	bound   map[netip.AddrPort]string
	failAdd map[string]bool // "instance host:port"
	log     []string
}

func newFakeLab(ports []int, ids ...string) *fakeLab {
	l := &fakeLab{ins: map[string]*compute.Instance{}, fws: map[string][]compute.Forward{},
		bound: map[netip.AddrPort]string{}, failAdd: map[string]bool{}}
	for _, id := range ids {
		l.ins[id] = &compute.Instance{ID: id, State: compute.Running, Ports: ports}
	}
	return l
}

func (l *fakeLab) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []compute.Instance
	for _, in := range l.ins {
		out = append(out, in.Clone())
	}
	return out, nil
}

func (l *fakeLab) PortForwards(ctx context.Context, id string) (compute.ForwardSession, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in, ok := l.ins[id]; !ok || in.State != compute.Running {
		return nil, fmt.Errorf("fake: %s: %w", id, compute.ErrNotFound)
	}
	return &fakeMonitor{l: l, id: id}, nil
}

// kill makes an instance die: its forwards go with it.
func (l *fakeLab) kill(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ins[id].State = compute.Terminated
	for _, f := range l.fws[id] {
		delete(l.bound, f.Host)
	}
	delete(l.fws, id)
}

func (l *fakeLab) ops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

type fakeMonitor struct {
	l  *fakeLab
	id string
}

func (m *fakeMonitor) Forwards(ctx context.Context) ([]compute.Forward, error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	return slices.Clone(m.l.fws[m.id]), nil
}

func (m *fakeMonitor) AddForward(ctx context.Context, f compute.Forward) error {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	if owner, ok := m.l.bound[f.Host]; ok || m.l.failAdd[m.id+" "+f.Host.String()] {
		return fmt.Errorf("fake: %s: %s is bound by %q", m.id, f.Host, owner)
	}
	m.l.bound[f.Host] = m.id
	m.l.fws[m.id] = append(m.l.fws[m.id], f)
	m.l.log = append(m.l.log, "add "+m.id+" "+f.Host.String())
	return nil
}

func (m *fakeMonitor) RemoveForward(ctx context.Context, host netip.AddrPort) error {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	fws := m.l.fws[m.id]
	i := slices.IndexFunc(fws, func(f compute.Forward) bool { return f.Host == host })
	if i < 0 {
		return nil
	}
	m.l.fws[m.id] = slices.Delete(fws, i, i+1)
	delete(m.l.bound, host)
	m.l.log = append(m.l.log, "remove "+m.id+" "+host.String())
	return nil
}

func (m *fakeMonitor) Close() error { return nil }

var (
	addr100 = netip.MustParseAddr("127.0.0.100")
	addr101 = netip.MustParseAddr("127.0.0.101")
)

func newTest(t *testing.T, l lab) *Provider {
	t.Helper()
	p, err := newProvider(&Config{Address: "127.0.0.100"}, l, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		l := newFakeLab([]int{80, 443}, "vm-a", "vm-b")
		p := newTest(t, l)
		return iptest.Fixture{
			Provider:  p,
			Addrs:     []netip.Addr{addr100, addr101},
			Instances: []string{"vm-a", "vm-b"},
			Unknown:   "vm-none",
			Reopen: func(t *testing.T) ip.Provider {
				q, err := newProvider(&p.cfg, l, p.dir)
				if err != nil {
					t.Fatal(err)
				}
				return q
			},
			Kill: func(_ *testing.T, id string) { l.kill(id) },
		}
	}, iptest.Options{Parallel: true})
}

// TestMoveOrder checks that each port is removed from the old holder just
// before it is added to the new one, the order that keeps every port's gap
// to one monitor round trip.
func TestMoveOrder(t *testing.T) {
	l := newFakeLab([]int{80, 443}, "vm-a", "vm-b")
	p := newTest(t, l)
	ctx := t.Context()
	if err := p.Assign(ctx, addr100, "vm-a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Assign(ctx, addr100, "vm-b"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"add vm-a 127.0.0.100:80", "add vm-a 127.0.0.100:443",
		"remove vm-a 127.0.0.100:80", "add vm-b 127.0.0.100:80",
		"remove vm-a 127.0.0.100:443", "add vm-b 127.0.0.100:443",
	}
	slices.Sort(want[:2])
	got := l.ops()
	slices.Sort(got[:2])
	if !slices.Equal(got, want) {
		t.Fatalf("monitor commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := p.Assign(ctx, addr100, "vm-b"); err != nil {
		t.Fatal(err)
	}
	if n := len(l.ops()); n != len(want) {
		t.Errorf("assigning the holder again sent %d more commands", n-len(want))
	}
}

// TestMoveFailureGivesBack: when the new holder cannot take a port, the
// ports moved so far return to the old holder.
func TestMoveFailureGivesBack(t *testing.T) {
	l := newFakeLab([]int{80, 443}, "vm-a", "vm-b")
	p := newTest(t, l)
	ctx := t.Context()
	if err := p.Assign(ctx, addr100, "vm-a"); err != nil {
		t.Fatal(err)
	}
	l.failAdd["vm-b 127.0.0.100:443"] = true
	err := p.Assign(ctx, addr100, "vm-b")
	if err == nil || !strings.HasPrefix(err.Error(), "loopback: ") || !strings.Contains(err.Error(), "vm-b") {
		t.Fatalf("Assign with a failing add: %v, want an error naming vm-b", err)
	}
	if h, err := p.Holder(ctx, addr100); err != nil || h != "vm-a" {
		t.Fatalf("Holder after a failed move = %q, %v; want vm-a", h, err)
	}
	if got := l.bound; len(got) != 2 || got[netip.AddrPortFrom(addr100, 80)] != "vm-a" || got[netip.AddrPortFrom(addr100, 443)] != "vm-a" {
		t.Fatalf("forwards after a failed move: %v, want both on vm-a", got)
	}
}

// TestHolderBelievesMonitors: the state file is only a hint.
func TestHolderBelievesMonitors(t *testing.T) {
	l := newFakeLab([]int{80}, "vm-a", "vm-b", "vm-c")
	p := newTest(t, l)
	ctx := t.Context()
	if err := p.Assign(ctx, addr100, "vm-a"); err != nil {
		t.Fatal(err)
	}
	// A move that died after its monitor commands, before the state file.
	m, _ := l.PortForwards(ctx, "vm-a")
	m.RemoveForward(ctx, netip.AddrPortFrom(addr100, 80))
	m, _ = l.PortForwards(ctx, "vm-c")
	m.AddForward(ctx, compute.Forward{Host: netip.AddrPortFrom(addr100, 80), GuestPort: 80})
	if h, err := p.Holder(ctx, addr100); err != nil || h != "vm-c" {
		t.Fatalf("Holder = %q, %v; want vm-c, which forwards the address", h, err)
	}
	if err := p.Assign(ctx, addr100, "vm-b"); err != nil {
		t.Fatal(err)
	}
	if h, err := p.Holder(ctx, addr100); err != nil || h != "vm-b" {
		t.Fatalf("Holder = %q, %v; want vm-b", h, err)
	}
}

func TestNotLoopback(t *testing.T) {
	p := newTest(t, newFakeLab(nil, "vm-a"))
	for _, a := range []string{"10.0.0.1", "::1", "192.0.2.1"} {
		if _, err := p.Holder(t.Context(), netip.MustParseAddr(a)); err == nil || !strings.Contains(err.Error(), a) {
			t.Errorf("Holder(%s): %v, want an error naming it", a, err)
		}
	}
}
