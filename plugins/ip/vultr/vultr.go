package vultr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/backoff"
	"github.com/drover-dev/drover/plugins/internal/keylock"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
	"github.com/drover-dev/drover/plugins/ip"
)

var (
	_ ip.Provider  = (*Provider)(nil)
	_ ip.Addresser = (*Provider)(nil)
)

// Provider moves reserved IPs of one Vultr account and region between instances.
//
// An address is known by its IP (the reserved IP whose subnet it is), so the provider can move
// any reserved IPv4 of the region; the block's address is the one the rollout moves (Address).
// The platform is the only state. Vultr attaches a reserved IP only when it is attached to no
// instance, so Assign detaches it from its holder, then attaches it to the new one, then reads
// it back until Vultr names the new holder: between the detach and the attach the address
// answers nowhere (LastGap says how long). Assigns of one address are serialized within the
// process; across processes, an attach that finds the address taken again detaches and tries
// again, so the last Assign wins. Safe for concurrent use.
type Provider struct {
	c      *govultr.Client
	region string
	addr   netip.Addr
	poll   time.Duration

	locks keylock.Locks[netip.Addr]

	mu      sync.Mutex
	lastGap time.Duration
}

// Option adjusts a Provider; tests use them to point it at a fake and poll faster.
type Option func(*options)

type options struct {
	client  *http.Client
	poll    time.Duration
	retries int
	minWait time.Duration
}

// WithHTTPClient sets the HTTP client of every request (its transport gets the API key added).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithPollInterval sets how often Assign reads the address back (default 1 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithRetry sets how many times a request answered 429 or 5xx is retried and the shortest wait.
func WithRetry(retries int, minWait time.Duration) Option {
	return func(o *options) { o.retries, o.minWait = retries, minWait }
}

// regioner is what the vultr compute provider tells about itself: its region.
type regioner interface{ Region() string }

// New returns the provider of cfg, whose address moves between the instances of on (a vultr
// compute provider, whose region the address must be in). It looks the address up, so an
// address that is not a reserved IP of the region fails here.
func New(ctx context.Context, cfg *Config, on compute.Provider, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("vultr ip: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vultr ip: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("vultr ip: no API key: set VULTR_API_KEY (or VULTR_API_KEY_FILE)")
	}
	r, ok := on.(regioner)
	if !ok || r.Region() == "" {
		return nil, fmt.Errorf("vultr ip: the compute block's provider (%T) has no Vultr region", on)
	}
	o := options{client: &http.Client{Timeout: time.Minute}, poll: time.Second, retries: 4, minWait: 500 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	url := cfg.APIURL
	if url == "" {
		url = DefaultAPIURL
	}
	c, err := vultrapi.NewClient(url, cfg.APIKey, o.client, o.retries, o.minWait)
	if err != nil {
		return nil, fmt.Errorf("vultr ip: %w", err)
	}
	p := &Provider{c: c, region: r.Region(), addr: cfg.addr(), poll: o.poll}
	if _, err := p.lookup(ctx, p.addr); err != nil {
		return nil, err
	}
	return p, nil
}

// Address is the block's reserved IP.
func (p *Provider) Address() netip.Addr { return p.addr }

// LastGap is how long the last move of this process left its address attached to no instance:
// from the detach's answer to the attach's. Zero before any move.
func (p *Provider) LastGap() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastGap
}

// Holder implements ip.Provider: the instance Vultr says the address is attached to, "" when none
// is, or when that instance is gone.
func (p *Provider) Holder(ctx context.Context, addr netip.Addr) (string, error) {
	rip, err := p.lookup(ctx, addr)
	if err != nil || rip.InstanceID == "" {
		return "", err
	}
	alive, err := p.alive(ctx, rip.InstanceID)
	if err != nil {
		return "", fmt.Errorf("vultr ip: holder of %v: %w", addr, err)
	}
	if !alive {
		return "", nil
	}
	return rip.InstanceID, nil
}

// Assign implements ip.Provider: detach from the holder, attach to instanceID, read back. An
// unknown instance is refused before anything changes (ip.ErrUnknownInstance). When the attach
// fails after the detach, Assign attaches the address back to the old holder when it can, and
// the error says where it is; when ctx ends in between, the address may be held by no one, and
// a retry finishes the move.
func (p *Provider) Assign(ctx context.Context, addr netip.Addr, instanceID string) error {
	if instanceID == "" {
		return errors.New("vultr ip: assign: empty instance ID")
	}
	unlock, err := p.locks.Lock(ctx, addr)
	if err != nil {
		return fmt.Errorf("vultr ip: assign %v: %w", addr, err)
	}
	defer unlock()
	const attempts = 5 // another process taking the address between our detach and attach
	for range attempts {
		rip, err := p.lookup(ctx, addr)
		if err != nil {
			return err
		}
		if rip.InstanceID == instanceID {
			return nil
		}
		alive, err := p.alive(ctx, instanceID)
		if err != nil {
			return fmt.Errorf("vultr ip: assign %v: %w", addr, err)
		}
		if !alive {
			return fmt.Errorf("vultr ip: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
		}
		old := rip.InstanceID
		var detached time.Time
		if old != "" {
			if err := p.c.ReservedIP.Detach(ctx, rip.ID); err != nil && !notAttached(err) {
				return fmt.Errorf("vultr ip: detaching %v from %s: %w", addr, old, vultrapi.CtxErr(ctx, err))
			}
			detached = time.Now()
		}
		err = p.c.ReservedIP.Attach(ctx, rip.ID, instanceID)
		if !detached.IsZero() {
			p.mu.Lock()
			p.lastGap = time.Since(detached)
			p.mu.Unlock()
		}
		switch {
		case err == nil:
			return p.waitHolder(ctx, addr, instanceID)
		case alreadyAttached(err):
			continue // another process attached it meanwhile: detach again
		case vultrapi.Status(err) == http.StatusNotFound:
			err = fmt.Errorf("%w (%v)", ip.ErrUnknownInstance, err)
		}
		where := "attached to no instance"
		if old != "" {
			if rerr := p.c.ReservedIP.Attach(context.WithoutCancel(ctx), rip.ID, old); rerr == nil {
				where = "attached back to " + old
			}
		}
		return fmt.Errorf("vultr ip: attaching %v to %s (%s now): %w", addr, instanceID, where, vultrapi.CtxErr(ctx, err))
	}
	return fmt.Errorf("vultr ip: assign %v to %s: another client kept attaching it elsewhere (%d tries)", addr, instanceID, attempts)
}

// waitHolder reads the address back until Vultr names id as its holder.
func (p *Provider) waitHolder(ctx context.Context, addr netip.Addr, id string) error {
	wait := min(50*time.Millisecond, p.poll)
	for {
		rip, err := p.lookup(ctx, addr)
		if err != nil {
			return err
		}
		if rip.InstanceID == id {
			return nil
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("vultr ip: waiting for %v to show on %s: %w", addr, id, err)
		}
		wait = min(2*wait, p.poll)
	}
}

// lookup is the reserved IP of addr in the provider's region, as Vultr lists it now.
func (p *Provider) lookup(ctx context.Context, addr netip.Addr) (govultr.ReservedIP, error) {
	if err := ctx.Err(); err != nil {
		return govultr.ReservedIP{}, fmt.Errorf("vultr ip: %w", err)
	}
	if !addr.IsValid() {
		return govultr.ReservedIP{}, errors.New("vultr ip: no address given")
	}
	opts := &govultr.ListOptions{PerPage: 100}
	for {
		rips, meta, _, err := p.c.ReservedIP.List(ctx, opts)
		if err != nil {
			return govultr.ReservedIP{}, fmt.Errorf("vultr ip: looking up %v: %w", addr, vultrapi.CtxErr(ctx, err))
		}
		for _, r := range rips {
			if r.Subnet == addr.String() && r.Region == p.region {
				return r, nil
			}
		}
		if meta == nil || meta.Links == nil || meta.Links.Next == "" {
			return govultr.ReservedIP{}, fmt.Errorf("vultr ip: %v is not a reserved IP of this account in %s", addr, p.region)
		}
		opts.Cursor = meta.Links.Next
	}
}

// alive reports whether the instance exists.
func (p *Provider) alive(ctx context.Context, id string) (bool, error) {
	_, _, err := p.c.Instance.Get(ctx, id)
	if s := vultrapi.Status(err); s == http.StatusNotFound || s == http.StatusBadRequest {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking up instance %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	return true, nil
}

func alreadyAttached(err error) bool {
	s, msg := vultrapi.Error(err)
	return s == http.StatusBadRequest && strings.Contains(strings.ToLower(msg), "already attached")
}

func notAttached(err error) bool {
	s, msg := vultrapi.Error(err)
	return s == http.StatusBadRequest && strings.Contains(strings.ToLower(msg), "not attached")
}
