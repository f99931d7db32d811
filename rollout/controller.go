package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout/health"
)

// Options configure a Controller. Fleet, Store and Catalog are required; Compute and IP are needed
// by commands that touch machines (Plan and History need neither).
type Options struct {
	Fleet   *fleet.Fleet
	Store   store.Store
	Catalog *images.Catalog

	// Compute returns the provider of a compute block by name (deploy { compute = NAME }).
	Compute func(ctx context.Context, name string) (compute.Provider, error)
	// IP returns the provider of an ip block by name (cutover "ip" { ip = NAME }) and the failover
	// address it manages.
	IP func(ctx context.Context, name string) (ip.Provider, netip.Addr, error)
	// DNS returns the provider of a dns block by name (cutover "dns" { dns = NAME }).
	DNS func(ctx context.Context, name string) (dns.Provider, error)
	// VerifyDNS checks that every authoritative server serves a set; nil means reading the set
	// back from the provider, which proves less.
	VerifyDNS DNSVerifier
	// DNSWait bounds how long a dns cutover waits for every authoritative server; zero means 2m.
	DNSWait time.Duration
	// Cutovers adds or replaces cutover types; ip, dns and none are built in.
	Cutovers map[string]CutoverType
	// Health is the registry of health check types; nil means health.NewRegistry() (http, https, tcp).
	Health *health.Registry
	// Dialer is what health probes dial through; nil means a net.Dialer.
	Dialer health.Dialer
	// CurrentImage returns the identity of the image the fleet describes for role as it is now (what
	// drover build makes of it), which a rollout without an explicit image deploys; nil, or an empty
	// identity for a role the fleet cannot say it of, means the role's newest image in the catalog.
	CurrentImage func(role string) (string, error)
	// UserData returns what a new instance gets at boot (a Vault wrapping token, never a plain
	// secret); nil means none. It is never stored.
	UserData func(ctx context.Context, role string, slot int) ([]byte, error)
	// Credentials issues each new instance's boot credential (user-data) and revokes it when the
	// instance is destroyed; nil means instances get none. It replaces UserData for roles it wants.
	Credentials Credentials
	// Raft opens the raft cluster of a role of strategy "raft" (autopilot's state, remove-peer):
	// a replacement needs it; nil refuses replacements. cmd/ implements it with Vault's API.
	Raft func(ctx context.Context, role string) (RaftCluster, error)
	// RaftNode adds to a raft node's user-data its node ID and the API address of the member it
	// joins ("" for the node that starts a cluster); nil leaves the user-data as it is.
	RaftNode func(role string, userData []byte, nodeID, join string) ([]byte, error)
	// BootVolumes writes the volumes a new instance of role mounts before its services start into
	// its user-data (userData as UserData and Credentials made it, nil when they made none); cmd
	// writes them with bootdata. Needed by roles whose deploy has volumes (strategy handoff).
	BootVolumes func(userData []byte, role string, vols []BootVolume) ([]byte, error)

	// Owner names this drover in locks and records; "" means "user@host pid N".
	Owner string
	// LockTTL is how long a role lock lasts without renewal; it is renewed every third of it.
	// Zero means 30 seconds.
	LockTTL time.Duration
	// LockWait is how long a command waits for a role lock another drover holds, saying who holds
	// it as a "lock" step; zero refuses at once with a *LockedError naming the holder.
	LockWait time.Duration
	// Now is the clock of records and keep_old; nil means time.Now. Health checks and the watch
	// window always run on real time.
	Now func() time.Time
	// Logger gets one record per transition and side effect; nil discards.
	Logger *slog.Logger
	// Events gets progress for the CLI, one per transition or step; called from the command's
	// goroutine and, for probes, from health check goroutines (it must be safe for that).
	Events func(Event)

	// CrashAfter is a test hook: right after a transition to this state is persisted, the command
	// stops as if killed (-9): no further side effect, the lock is not released. CrashExit, when set,
	// is called then (the CLI passes os.Exit); otherwise the command returns an error wrapping
	// ErrCrashed. See CrashAfterFromEnv.
	CrashAfter State
	CrashExit  func(State)
}

// Controller runs rollouts of a fleet's roles. Its methods are commands: each takes the role's lock,
// reads the role's records and what the providers report, repairs what a killed earlier command left
// behind, then does its work. Running a command again after it was killed converges.
type Controller struct {
	opts       Options
	owner      string
	log        *slog.Logger
	now        func() time.Time
	health     *health.Registry
	cutovers   map[string]CutoverType
	strategies map[string]Strategy
}

// New checks opts and returns a Controller.
func New(opts Options) (*Controller, error) {
	switch {
	case opts.Fleet == nil:
		return nil, errors.New("rollout: no fleet")
	case opts.Store == nil:
		return nil, errors.New("rollout: no state store")
	case opts.Catalog == nil:
		return nil, errors.New("rollout: no image catalog")
	}
	if opts.CrashAfter != "" && !opts.CrashAfter.Valid() && !isStepCrashPoint(opts.CrashAfter) {
		return nil, fmt.Errorf("rollout: crash hook: unknown state %q", opts.CrashAfter)
	}
	c := &Controller{opts: opts, owner: opts.Owner, log: opts.Logger, now: opts.Now, health: opts.Health}
	if c.owner == "" {
		c.owner = DefaultOwner()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.health == nil {
		c.health = health.NewRegistry()
	}
	if c.opts.Dialer == nil {
		c.opts.Dialer = &net.Dialer{}
	}
	if c.opts.LockTTL <= 0 {
		c.opts.LockTTL = 30 * time.Second
	}
	c.cutovers = builtinCutovers(c)
	for k, t := range opts.Cutovers {
		c.cutovers[k] = t
	}
	c.strategies = builtinStrategies()
	return c, nil
}

// Owner is the name this controller holds locks under.
func (c *Controller) Owner() string { return c.owner }

// deployOf returns a role and its deploy block.
func (c *Controller) deployOf(role string) (*fleet.Role, *fleet.Deploy, error) {
	r := c.opts.Fleet.Role(role)
	if r == nil {
		return nil, nil, fmt.Errorf("rollout: no role %q in %s", role, c.opts.Fleet.Path)
	}
	if r.Deploy == nil {
		return nil, nil, fmt.Errorf("rollout: role %q has no deploy block: it is built, not rolled out", role)
	}
	// drover validate refuses a strategy that is not built; a fleet built another way is refused here.
	if _, err := c.strategyOf(r.Deploy); err != nil {
		return nil, nil, fmt.Errorf("rollout: role %q: %w", role, err)
	}
	return r, r.Deploy, nil
}

// checksOf builds the health checks of a deploy block.
func (c *Controller) checksOf(role string, dep *fleet.Deploy) ([]health.Check, error) {
	out := make([]health.Check, 0, len(dep.Health))
	for _, hc := range dep.Health {
		ch, err := c.health.Build(hc, c.opts.Dialer)
		if err != nil {
			return nil, fmt.Errorf("rollout: role %q: %w", role, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// cutoverOf builds the cutover of a deploy block.
func (c *Controller) cutoverOf(ctx context.Context, role string, dep *fleet.Deploy) (Cutover, error) {
	typ := dep.Cutover.Type
	if typ == "" {
		typ = "none"
	}
	t, ok := c.cutovers[typ]
	if !ok {
		return nil, fmt.Errorf("rollout: role %q: cutover %q is not available (available: %s)", role, typ, strings.Join(sortedKeys(c.cutovers), ", "))
	}
	cut, err := t.Open(ctx, role, dep.Cutover)
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: cutover %q: %w", role, typ, err)
	}
	return cut, nil
}

func (c *Controller) computeOf(ctx context.Context, role string, dep *fleet.Deploy) (compute.Provider, error) {
	if c.opts.Compute == nil {
		return nil, fmt.Errorf("rollout: role %q: no compute providers configured", role)
	}
	p, err := c.opts.Compute(ctx, dep.Compute)
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: compute %q: %w", role, dep.Compute, err)
	}
	return p, nil
}

// imageOf is the image's local disk: the qcow2 artifact if there is one, else the raw disk. Providers
// that boot their own copy get it from bootImage (publish.go).
func (c *Controller) imageOf(role string, img Image) (compute.Image, error) {
	m, err := c.opts.Catalog.Get(img.Identity)
	if err != nil {
		return compute.Image{}, fmt.Errorf("rollout: role %q: image %s: %w (rebuild it with drover build %s)", role, img.Short, err, role)
	}
	file := "disk.qcow2"
	if a := m.Artifact("qcow2"); a != nil {
		file = a.File
	} else if a := m.Artifact("raw"); a != nil {
		file = a.File
	}
	return compute.Image{Identity: img.Identity, Path: c.opts.Catalog.ImageDir(img.Identity) + "/" + file}, nil
}

// resolveImage finds the image a rollout of role deploys: ref; without one, the image the fleet
// describes now (CurrentImage), which must be built; without CurrentImage, the role's newest.
func (c *Controller) resolveImage(role, ref string) (Image, error) {
	if ref == "" {
		id, err := c.currentImage(role)
		if err != nil {
			return Image{}, err
		}
		ref = id
	}
	if ref == "" {
		ref = role // the newest
	}
	m, err := c.opts.Catalog.Resolve(ref)
	if err != nil {
		return Image{}, fmt.Errorf("rollout: role %q: image %q: %w", role, ref, err)
	}
	if m.Role != role {
		return Image{}, fmt.Errorf("rollout: role %q: image %q belongs to role %q", role, ref, m.Role)
	}
	return Image{Identity: m.Identity, Short: m.ShortID()}, nil
}

// ErrNotBuilt means the image the fleet describes for a role now is not in the catalog.
var ErrNotBuilt = errors.New("not built")

// currentImage is the identity of role's image for the fleet as it is now ("" without
// CurrentImage, or when the fleet cannot say); an error wrapping ErrNotBuilt when the catalog does
// not have it.
func (c *Controller) currentImage(role string) (string, error) {
	if c.opts.CurrentImage == nil {
		return "", nil
	}
	id, err := c.opts.CurrentImage(role)
	if err != nil {
		return "", fmt.Errorf("rollout: role %q: the image the fleet describes: %w", role, err)
	}
	if id == "" {
		return "", nil
	}
	known, err := c.opts.Catalog.Known(id)
	if err != nil {
		return "", fmt.Errorf("rollout: role %q: %w", role, err)
	}
	if !known {
		return id, fmt.Errorf("rollout: role %q: its image for the fleet as it is now (%s) is %w: drover build %s makes it; --image rolls out another from drover images list",
			role, images.ShortID(id), ErrNotBuilt, role)
	}
	return id, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
