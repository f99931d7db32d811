package digitalocean

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/backoff"
	"github.com/drover-dev/drover/plugins/internal/doapi"
)

// Stop implements compute.Stopper with the power_off action, and waits for it to complete. A
// droplet still starting is waited for first. Stopping an off droplet does nothing; an unknown
// one is an error wrapping compute.ErrNotFound.
func (p *Provider) Stop(ctx context.Context, id string) error {
	return p.power(ctx, id, "off", func(ctx context.Context, n int) (*godo.Action, *godo.Response, error) {
		return p.c.DropletActions.PowerOff(ctx, n)
	})
}

// Start implements compute.Stopper with the power_on action; it returns once the action
// completed. Starting an active droplet does nothing; an unknown one is an error wrapping
// compute.ErrNotFound.
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.power(ctx, id, "active", func(ctx context.Context, n int) (*godo.Action, *godo.Response, error) {
		return p.c.DropletActions.PowerOn(ctx, n)
	})
}

// power brings droplet id to status want ("off" or "active") with act.
func (p *Provider) power(ctx context.Context, id, want string, act func(context.Context, int) (*godo.Action, *godo.Response, error)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return fmt.Errorf("digitalocean: droplet %q: %w", id, compute.ErrNotFound)
	}
	w := p.poller()
	for {
		d, err := p.get(ctx, n)
		switch {
		case doapi.NotFound(err) || err == nil && d.Status == "archive":
			return fmt.Errorf("digitalocean: droplet %q: %w", id, compute.ErrNotFound)
		case err != nil:
			return fmt.Errorf("digitalocean: %w", err)
		case d.Status == want:
			return nil
		case d.Status == "active" || d.Status == "off":
			a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("powering droplet %d %s", n, map[string]string{"off": "off", "active": "on"}[want]), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
				return act(ctx, n)
			})
			if err != nil {
				return fmt.Errorf("digitalocean: %w", err)
			}
			return p.waitAction(ctx, a.ID, fmt.Sprintf("droplet %d", n))
		}
		// new: wait until it has started before acting on it.
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("digitalocean: waiting for droplet %d to start: %w", n, err)
		}
	}
}

// waitAction polls action id until it completed; an errored action is an error naming what.
func (p *Provider) waitAction(ctx context.Context, id int, what string) error {
	w := p.poller()
	for {
		a, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading action %d", id), func(ctx context.Context) (*godo.Action, *godo.Response, error) {
			return p.c.Actions.Get(ctx, id)
		})
		if err != nil {
			return fmt.Errorf("digitalocean: %w", err)
		}
		switch a.Status {
		case godo.ActionCompleted:
			return nil
		case "errored":
			return fmt.Errorf("digitalocean: action %s (%d) of %s errored", a.Type, id, what)
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("digitalocean: waiting for action %s (%d) of %s: %w", a.Type, id, what, err)
		}
	}
}

// firstPoll is the first wait of a poll loop: most waits end within seconds, so a loop starts
// asking often and slows down to the provider's poll interval.
const firstPoll = 100 * time.Millisecond

type poller struct{ next, max time.Duration }

func (p *Provider) poller() *poller { return &poller{next: min(firstPoll, p.poll), max: p.poll} }

func (w *poller) wait(ctx context.Context) error {
	d := w.next
	w.next = min(2*w.next, w.max)
	return backoff.Sleep(ctx, d)
}
