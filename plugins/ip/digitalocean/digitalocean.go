package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/doapi"
	"github.com/drover-dev/drover/plugins/internal/keylock"
	"github.com/drover-dev/drover/plugins/ip"
)

var (
	_ ip.Provider  = (*Provider)(nil)
	_ ip.Addresser = (*Provider)(nil)
)

// Provider moves reserved IPs of one account between droplets.
//
// The platform is the only state: Holder reports what GET /v2/reserved_ips/{ip} says. Assign is
// the assign action, which takes the address from its holder in one step (there is no unassigned
// moment between two droplets), then a wait until the action completes and a check that the API
// names the new holder. Assigns of one address are serialized within the process; across
// processes DigitalOcean applies one action at a time, and the last one wins. Safe for
// concurrent use.
type Provider struct {
	c    *doapi.Client
	addr netip.Addr
	poll time.Duration

	locks keylock.Locks[netip.Addr]
}

// Option adjusts a Provider.
type Option func(*options)

type options struct {
	retry doapi.Retry
	poll  time.Duration
}

// WithRetry replaces the retry policy of a client the provider makes itself (doapi.DefaultRetry).
func WithRetry(r doapi.Retry) Option { return func(o *options) { o.retry = r } }

// WithPollInterval sets how often Assign reads its action (default 1 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// clientHolder is the digitalocean compute provider: its client, so both blocks share one rate
// limit.
type clientHolder interface{ Client() *doapi.Client }

// New returns the provider of cfg, whose address moves between the droplets of on. It looks the
// address up, so a reserved IP the account does not have fails here.
func New(ctx context.Context, cfg *Config, on compute.Provider, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("ip/digitalocean: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ip/digitalocean: %w", err)
	}
	o := options{retry: doapi.DefaultRetry(), poll: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	p := &Provider{addr: netip.MustParseAddr(cfg.Address), poll: o.poll}
	if h, ok := on.(clientHolder); ok && cfg.APIURL == "" {
		p.c = h.Client()
	} else {
		c, err := doapi.New(cfg.Token, cfg.APIURL, o.retry, nil)
		if err != nil {
			return nil, fmt.Errorf("ip/digitalocean: %w", err)
		}
		p.c = c
	}
	if _, err := p.lookup(ctx, p.addr); err != nil {
		return nil, err
	}
	return p, nil
}

// Address is the block's reserved IP.
func (p *Provider) Address() netip.Addr { return p.addr }

// Holder implements ip.Provider: the droplet the API says holds addr, "" when none does.
func (p *Provider) Holder(ctx context.Context, addr netip.Addr) (string, error) {
	r, err := p.lookup(ctx, addr)
	if err != nil {
		return "", err
	}
	if r.Droplet == nil || r.Droplet.Status == "archive" {
		return "", nil
	}
	return strconv.Itoa(r.Droplet.ID), nil
}

// Assign implements ip.Provider. A droplet that does not exist is refused before anything
// changes (ip.ErrUnknownInstance). When ctx ends while waiting for the action, the move may have
// happened or not: Holder says which, and a retry finishes it.
func (p *Provider) Assign(ctx context.Context, addr netip.Addr, instanceID string) error {
	if instanceID == "" {
		return errors.New("ip/digitalocean: assign: empty droplet ID")
	}
	unlock, err := p.locks.Lock(ctx, addr)
	if err != nil {
		return fmt.Errorf("ip/digitalocean: assign %v: %w", addr, err)
	}
	defer unlock()
	r, err := p.lookup(ctx, addr)
	if err != nil {
		return err
	}
	if r.Droplet != nil && strconv.Itoa(r.Droplet.ID) == instanceID {
		return nil
	}
	id, err := strconv.Atoi(instanceID)
	if err != nil || id < 1 {
		return fmt.Errorf("ip/digitalocean: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	_, _, err = doapi.Do(ctx, p.c, fmt.Sprintf("reading droplet %d", id), func(ctx context.Context) (*godo.Droplet, *godo.Response, error) {
		return p.c.Droplets.Get(ctx, id)
	})
	if doapi.NotFound(err) {
		return fmt.Errorf("ip/digitalocean: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	if err != nil {
		return fmt.Errorf("ip/digitalocean: assign %v: %w", addr, err)
	}
	a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("assigning %v to droplet %d", addr, id), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
		return p.c.ReservedIPActions.Assign(ctx, addr.String(), id)
	})
	if s := doapi.Status(err); s == http.StatusNotFound || s == http.StatusUnprocessableEntity && !p.exists(ctx, id) {
		return fmt.Errorf("ip/digitalocean: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	if err != nil {
		return fmt.Errorf("ip/digitalocean: %w", err)
	}
	if err := p.waitAction(ctx, addr, a.ID); err != nil {
		return err
	}
	holder, err := p.Holder(ctx, addr)
	if err != nil {
		return err
	}
	if holder != instanceID {
		return fmt.Errorf("ip/digitalocean: the assign action of %v to droplet %d completed, but the API names %q as its holder (another assign since?)", addr, id, holder)
	}
	return nil
}

// exists reports whether droplet id exists (false also when the API cannot say).
func (p *Provider) exists(ctx context.Context, id int) bool {
	_, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading droplet %d", id), func(ctx context.Context) (*godo.Droplet, *godo.Response, error) {
		return p.c.Droplets.Get(ctx, id)
	})
	return err == nil
}

// waitAction polls the reserved IP's action until it completed.
func (p *Provider) waitAction(ctx context.Context, addr netip.Addr, id int) error {
	wait := min(50*time.Millisecond, p.poll)
	for {
		a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading action %d of %v", id, addr), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
			return p.c.ReservedIPActions.Get(ctx, addr.String(), id)
		})
		if err != nil {
			return fmt.Errorf("ip/digitalocean: %w", err)
		}
		switch a.Status {
		case godo.ActionCompleted:
			return nil
		case "errored":
			return fmt.Errorf("ip/digitalocean: the %s action (%d) of %v errored", a.Type, id, addr)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ip/digitalocean: waiting for the %s action (%d) of %v: %w", a.Type, id, addr, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, p.poll)
	}
}

// lookup is the account's reserved IP addr, as the API reports it now.
func (p *Provider) lookup(ctx context.Context, addr netip.Addr) (*godo.ReservedIP, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ip/digitalocean: %w", err)
	}
	if !addr.IsValid() {
		return nil, errors.New("ip/digitalocean: no address given")
	}
	r, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("looking up reserved IP %v", addr), func(ctx context.Context) (*godo.ReservedIP, *godo.Response, error) {
		return p.c.ReservedIPs.Get(ctx, addr.String())
	})
	if doapi.NotFound(err) {
		return nil, fmt.Errorf("ip/digitalocean: %v is not a reserved IP of this account (Networking > Reserved IPs)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("ip/digitalocean: %w", err)
	}
	return r, nil
}
