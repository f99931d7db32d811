package rollout_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	computemem "github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/plugins/ip"
	ipmem "github.com/drover-dev/drover/plugins/ip/memory"
	"github.com/drover-dev/drover/plugins/store"
	storemem "github.com/drover-dev/drover/plugins/store/memory"
	"github.com/drover-dev/drover/rollout"
)

const ms = time.Millisecond

// lab is the memory fakes wired together, plus a tiny HTTP server per instance that a test can make
// healthy or unhealthy, a console log per instance, and a network (the Dialer) that routes the
// fake's addresses and the failover IP to those servers.
type lab struct {
	t        *testing.T
	dir      string
	comp     *labCompute
	ip       *ipmem.Provider
	store    *storemem.Store
	catalog  *images.Catalog
	fleet    *fleet.Fleet
	failover netip.Addr
	clock    *fakeClock
	owner    string

	mu         sync.Mutex
	backends   map[string]*backend // by instance ID
	imageOf    map[string]string   // instance ID -> image identity
	unhealthy  map[string]bool     // image identities whose instances answer 503
	onEvent    func(rollout.Event)
	events     []rollout.Event
	built      map[string]int // role -> images built
	identities map[string]string
	userData   map[string][]byte // instance ID -> the user-data it booted with
	// boot, when set, stands in for drover-boot's login at each boot (launch or start) with the
	// user-data the instance has then: an error is a boot that fails before it waits for volumes.
	boot func(id string, userData []byte) error
}

type backend struct {
	srv     *httptest.Server
	healthy atomic.Bool
	console string
}

func newLab(t *testing.T, roles ...*fleet.Role) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{
		t: t, dir: dir, store: storemem.New(), catalog: images.OpenCatalog(dir),
		fleet:    &fleet.Fleet{Path: filepath.Join(dir, "drover.hcl"), Dir: dir, Name: "lab", Roles: roles},
		failover: netip.MustParseAddr("127.0.0.100"), clock: &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
		owner: "tester@lab pid 1", backends: map[string]*backend{}, imageOf: map[string]string{},
		unhealthy: map[string]bool{}, built: map[string]int{}, identities: map[string]string{}, userData: map[string][]byte{},
	}
	l.comp = &labCompute{Provider: computemem.New(), lab: l}
	l.ip = ipmem.New(l.comp)
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, b := range l.backends {
			b.srv.Close()
		}
	})
	return l
}

// webRole is a role deployed on the lab: 2 instances, an http check, the failover IP, keep_old 15m.
func webRole(mod ...func(*fleet.Deploy)) *fleet.Role {
	dep := &fleet.Deploy{
		Compute: "lab", Count: 2, Strategy: "bluegreen", Ports: []int{80},
		Health: []fleet.HealthCheck{{Type: "http", Port: 80, Path: "/healthz", Expect: 200,
			Interval: 5 * ms, Timeout: 500 * ms, Healthy: 2, Deadline: 400 * ms}},
		Cutover: fleet.Cutover{Type: "ip", IP: "front"}, KeepOld: 15 * time.Minute, Watch: 60 * ms,
	}
	for _, m := range mod {
		m(dep)
	}
	return &fleet.Role{Name: "web", Deploy: dep}
}

// build adds a new image of role to the catalog (newer than the others) and returns its identity.
func (l *lab) build(role string) string {
	l.t.Helper()
	l.mu.Lock()
	l.built[role]++
	n := l.built[role]
	l.mu.Unlock()
	sum := sha256.Sum256(fmt.Appendf(nil, "%s image %d", role, n))
	id := "sha256:" + hex.EncodeToString(sum[:])
	st, err := l.catalog.Stage(id)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "disk.qcow2"), []byte("disk"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	m := &images.Manifest{Identity: id, Role: role, Arch: "amd64", Created: time.Date(2026, 11, 1, 0, n, 0, 0, time.UTC),
		Artifacts: []images.Artifact{{Format: "qcow2", File: "disk.qcow2"}}}
	if err := st.Commit(m); err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.identities[fmt.Sprintf("%s#%d", role, n)] = id
	l.mu.Unlock()
	return id
}

func (l *lab) options() rollout.Options {
	return rollout.Options{
		Fleet: l.fleet, Store: l.store, Catalog: l.catalog,
		Compute: func(_ context.Context, name string) (compute.Provider, error) {
			if name != "lab" {
				return nil, fmt.Errorf("no compute %q", name)
			}
			return l.comp, nil
		},
		IP: func(_ context.Context, name string) (ip.Provider, netip.Addr, error) {
			if name != "front" {
				return nil, netip.Addr{}, fmt.Errorf("no ip %q", name)
			}
			return l.ip, l.failover, nil
		},
		Dialer: l, Owner: l.owner, Now: l.clock.Now, LockTTL: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
		Events: func(e rollout.Event) {
			l.mu.Lock()
			l.events = append(l.events, e)
			hook := l.onEvent
			l.mu.Unlock()
			if hook != nil {
				hook(e)
			}
		},
	}
}

func (l *lab) controller(mod ...func(*rollout.Options)) *rollout.Controller {
	l.t.Helper()
	o := l.options()
	for _, m := range mod {
		m(&o)
	}
	c, err := rollout.New(o)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

// setHealthy makes every instance of an image, now and later, answer 200 (or 503).
func (l *lab) setHealthy(identity string, healthy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unhealthy[identity] = !healthy
	for id, b := range l.backends {
		if l.imageOf[id] == identity {
			b.healthy.Store(healthy)
		}
	}
}

// instances lists the role's instances that are not terminated, by image.
func (l *lab) running(role string) map[string][]compute.Instance {
	l.t.Helper()
	ins, err := l.comp.Instances(context.Background(), compute.Selector{rollout.LabelRole: role})
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[string][]compute.Instance{}
	for _, in := range ins {
		if in.State != compute.Terminated {
			l.mu.Lock()
			img := l.imageOf[in.ID]
			l.mu.Unlock()
			out[img] = append(out[img], in)
		}
	}
	return out
}

// holderImage is the image and slot of the failover IP's holder, "" when none.
func (l *lab) holder() (id, image, slot string) {
	h, err := l.ip.Holder(context.Background(), l.failover)
	if err != nil {
		l.t.Fatal(err)
	}
	if h == "" {
		return "", "", ""
	}
	ins, _ := l.comp.Instances(context.Background(), nil)
	for _, in := range ins {
		if in.ID == h {
			l.mu.Lock()
			defer l.mu.Unlock()
			return h, l.imageOf[h], in.Labels[rollout.LabelSlot]
		}
	}
	return h, "?", "?"
}

func (l *lab) transitions() []rollout.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []rollout.State
	for _, e := range l.events {
		if e.Kind == "transition" {
			out = append(out, e.State)
		}
	}
	return out
}

// logEvents logs the progress events as the CLI would print them (probe failures left out).
func (l *lab) logEvents(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		if e.Step != "health" && e.Step != "watch" || !strings.Contains(e.Message, "503") {
			b.WriteString(e.String() + "\n")
		}
	}
	t.Logf("events:\n%s", b.String())
}

func (l *lab) resetEvents() {
	l.mu.Lock()
	l.events = nil
	l.mu.Unlock()
}

func (l *lab) lease(role string) (store.Lease, error) {
	return l.store.Lease(context.Background(), "locks/role/"+role)
}

// DialContext routes the lab's network: the failover IP to its holder, an instance address to the
// instance's server. Anything else is refused.
func (l *lab) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, err
	}
	id := ""
	if ap.Addr() == l.failover {
		if id, err = l.ip.Holder(ctx, l.failover); err != nil {
			return nil, err
		}
	} else {
		ins, err := l.comp.Provider.Instances(ctx, nil)
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			if in.Address == ap.Addr() && in.State != compute.Terminated {
				id = in.ID
			}
		}
	}
	l.mu.Lock()
	b := l.backends[id]
	l.mu.Unlock()
	if b == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", b.srv.Listener.Addr().String())
}

// labCompute is the memory compute fake with a server and a console log per instance.
type labCompute struct {
	*computemem.Provider
	lab *lab
}

func (c *labCompute) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	in, err := c.Provider.Launch(ctx, spec)
	if err != nil {
		return in, err
	}
	c.lab.mu.Lock()
	if _, seen := c.lab.userData[in.ID]; !seen {
		c.lab.userData[in.ID] = spec.UserData // what the instance got at its first launch
	}
	c.lab.mu.Unlock()
	if err := c.serve(in, spec.Image.Identity); err != nil {
		return in, err
	}
	if err := c.lab.waitForVolumes(in.ID, spec.UserData); err != nil {
		return in, err
	}
	return c.decorate(in), nil
}

// serve starts the server and writes the console log of a new instance.
func (c *labCompute) serve(in compute.Instance, identity string) error {
	l := c.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.imageOf[in.ID]; !ok && in.State != compute.Terminated {
		l.imageOf[in.ID] = identity
		b := &backend{console: filepath.Join(l.dir, in.ID+".console")}
		b.healthy.Store(!l.unhealthy[identity])
		b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !b.healthy.Load() {
				http.Error(w, "nginx: upstream not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		}))
		console := fmt.Sprintf("[    0.000000] Linux version 6.1.0-drover\n[    2.100000] drover-boot: fetching secrets, token=hvs.CAESIsecretvalue\n[    3.500000] nginx[412]: started %s\n", in.ID)
		if err := os.WriteFile(b.console, []byte(console), 0o644); err != nil {
			return err
		}
		l.backends[in.ID] = b
	}
	return nil
}

func (c *labCompute) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	ins, err := c.Provider.Instances(ctx, sel)
	for i := range ins {
		ins[i] = c.decorate(ins[i])
	}
	return ins, err
}

func (c *labCompute) Terminate(ctx context.Context, id string) error {
	if err := c.Provider.Terminate(ctx, id); err != nil {
		return err
	}
	c.lab.mu.Lock()
	b := c.lab.backends[id]
	delete(c.lab.backends, id)
	c.lab.mu.Unlock()
	if b != nil {
		b.srv.Close()
	}
	return nil
}

func (c *labCompute) decorate(in compute.Instance) compute.Instance {
	c.lab.mu.Lock()
	defer c.lab.mu.Unlock()
	if b := c.lab.backends[in.ID]; b != nil {
		in.Console = b.console
	}
	return in
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
