package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/doapi"
	"github.com/drover-dev/drover/plugins/internal/keylock"
)

const component = "digitalocean"

var (
	_ compute.Provider = (*Provider)(nil)
	_ compute.Stopper  = (*Provider)(nil)
)

// Provider runs droplets in one region.
//
// Everything it knows is on the platform, in tags (tags.go): a new process (or another machine)
// finds what an earlier one made. It is safe for concurrent use; across processes see Launch.
// Requests go through the retry policy of doapi (429 with Retry-After or RateLimit-Reset, 5xx,
// transport errors).
type Provider struct {
	cfg     Config
	c       *doapi.Client
	poll    time.Duration
	perPage int

	spaces spacesOptions

	launching   keylock.Locks[string] // one Launch of a token at a time in this process
	publishing  keylock.Locks[string] // one Publish of an identity at a time in this process
	volumeLocks keylock.Locks[string] // one attach or detach of a volume at a time in this process
}

// Option adjusts a Provider; tests use them to point it at a fake and to go fast.
type Option func(*options)

type options struct {
	retry   doapi.Retry
	base    http.RoundTripper
	poll    time.Duration
	perPage int
	spaces  spacesOptions
}

// WithRetry replaces the retry policy (doapi.DefaultRetry).
func WithRetry(r doapi.Retry) Option { return func(o *options) { o.retry = r } }

// WithTransport sets the HTTP transport of the API requests.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// WithPollInterval bounds the wait between two reads of something in progress (default 5 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithPageSize sets how many items a list request asks for (default 200, the API's maximum).
func WithPageSize(n int) Option { return func(o *options) { o.perPage = n } }

// New returns the provider of cfg. It makes no request.
func New(cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("digitalocean: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	o := options{retry: doapi.DefaultRetry(), poll: 5 * time.Second, perPage: 200}
	for _, opt := range opts {
		opt(&o)
	}
	if o.perPage < 1 || o.perPage > 200 {
		return nil, fmt.Errorf("digitalocean: page size %d: want 1 to 200", o.perPage)
	}
	c, err := doapi.New(cfg.Token, cfg.APIURL, o.retry, o.base)
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	return &Provider{cfg: *cfg, c: c, poll: o.poll, perPage: o.perPage, spaces: o.spaces}, nil
}

// Region is the region the provider works in.
func (p *Provider) Region() string { return p.cfg.Region }

// Client is the provider's API client, for the reserved IP provider of the same block.
func (p *Provider) Client() *doapi.Client { return p.c }

// Launch implements compute.Provider. DigitalOcean has no idempotency token, so the droplet
// carries the Spec.Token's digest as a tag, and Launch looks it up before creating: a retry, also
// after a crash, returns the droplet the first call made. Terminate leaves a tag of the token
// behind (drover-gone-...), so a Launch of a token whose droplet was deleted is refused rather
// than starting one nobody tracks; those tags on nothing are never deleted by drover (DigitalOcean
// keeps them, free).
//
// Launches of one token are serialized in the process. Two processes launching one token at the
// same moment may both create a droplet; each then lists the token's droplets again, and the one
// that did not make the oldest deletes its own, so one droplet remains and both return it.
//
// It returns once the droplet is active. A droplet that fails to start (the create action
// errors, the droplet disappears or is archived) is an error; when ctx ends while waiting, the
// droplet is left with its tags, so a retry adopts it.
func (p *Provider) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	if err := spec.RefuseCloudRole(component); err != nil {
		return compute.Instance{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Instance{}, fmt.Errorf("digitalocean: %w", err)
	}
	img := spec.Image.Published
	imageID, err := strconv.Atoi(img.ID)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("digitalocean: spec %q has no published custom image (Image.Published %q): publish image %s to %s first", spec.Name, img.ID, spec.Image.Identity, p.cfg.Region)
	}
	if img.Region != "" && img.Region != p.cfg.Region {
		return compute.Instance{}, fmt.Errorf("digitalocean: spec %q: image %s is in %s, this block launches in %s", spec.Name, img.ID, img.Region, p.cfg.Region)
	}
	tags, err := dropletTags(spec.Token, spec.Labels, spec.Ports, p.cfg.Tags)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("digitalocean: spec %q: %w", spec.Name, err)
	}
	unlock, err := p.launching.Lock(ctx, spec.Token)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("digitalocean: %w", err)
	}
	defer unlock()
	if d, ok, err := p.byToken(ctx, spec.Token); err != nil {
		return compute.Instance{}, err
	} else if ok {
		if d.Status == "active" {
			return p.instance(d), nil
		}
		return p.waitActive(ctx, d.ID)
	}
	if gone, err := p.tagExists(ctx, goneTag(spec.Token)); err != nil {
		return compute.Instance{}, err
	} else if gone {
		return compute.Instance{}, fmt.Errorf("digitalocean: spec %q: token %q was used by a droplet that was deleted: a token is never used twice", spec.Name, spec.Token)
	}
	req := &godo.DropletCreateRequest{
		Name: dropletName(spec.Name, spec.Token), Region: p.cfg.Region, Size: p.cfg.Size,
		Image: godo.DropletCreateImage{ID: imageID}, Tags: tags, VPCUUID: p.cfg.VPCUUID, UserData: string(spec.UserData),
	}
	d, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("creating droplet %q", req.Name), func(ctx context.Context) (*godo.Droplet, *godo.Response, error) {
		return p.c.Droplets.Create(ctx, req)
	})
	if err != nil {
		if doapi.Status(err) == http.StatusUnprocessableEntity {
			return compute.Instance{}, fmt.Errorf("digitalocean: DigitalOcean refused to create %q as %s in %s from image %d (nothing was started): %w", req.Name, p.cfg.Size, p.cfg.Region, imageID, err)
		}
		// A create that timed out may have been applied: the retry's byToken finds it.
		return compute.Instance{}, fmt.Errorf("digitalocean: %w", err)
	}
	id, err := p.settle(ctx, spec.Token, d.ID)
	if err != nil {
		return compute.Instance{}, err
	}
	return p.waitActive(ctx, id)
}

// settle makes one droplet of token remain when another process created one too: the oldest
// (lowest ID) stays, and the caller's own is deleted if it is not that one. It returns the
// droplet that stays.
func (p *Provider) settle(ctx context.Context, token string, mine int) (int, error) {
	all, err := p.list(ctx, tokenTag(token))
	if err != nil {
		return 0, err
	}
	keep := mine
	for _, d := range all {
		keep = min(keep, d.ID)
	}
	if keep != mine {
		if err := p.deleteDroplet(ctx, mine); err != nil {
			return 0, err
		}
	}
	return keep, nil
}

// byToken finds the droplet of token: the oldest when there are several (see settle).
func (p *Provider) byToken(ctx context.Context, token string) (godo.Droplet, bool, error) {
	all, err := p.list(ctx, tokenTag(token))
	if err != nil || len(all) == 0 {
		return godo.Droplet{}, false, err
	}
	return slices.MinFunc(all, func(a, b godo.Droplet) int { return a.ID - b.ID }), true, nil
}

// waitActive polls droplet id until it is active.
func (p *Provider) waitActive(ctx context.Context, id int) (compute.Instance, error) {
	w := p.poller()
	for {
		d, err := p.get(ctx, id)
		switch {
		case doapi.NotFound(err):
			return compute.Instance{}, fmt.Errorf("digitalocean: droplet %d disappeared while starting: DigitalOcean deletes a droplet that failed to create", id)
		case err != nil:
			return compute.Instance{}, fmt.Errorf("digitalocean: waiting for droplet %d to start: %w", id, err)
		case d.Status == "active" && publicIPv4(d).IsValid():
			return p.instance(*d), nil
		case d.Status == "archive":
			return compute.Instance{}, fmt.Errorf("digitalocean: droplet %d failed to start (archived)", id)
		}
		if err := w.wait(ctx); err != nil {
			return compute.Instance{}, fmt.Errorf("digitalocean: waiting for droplet %d to start (it stays, with its token's tag: a retry adopts it): %w", id, err)
		}
	}
}

// Instances implements compute.Provider: the droplets of one label's tag (the first label of sel
// by name), or of drover's marker tag when sel is empty, whose labels match sel.
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	tag := markerTag
	if keys := slices.Sorted(maps.Keys(sel)); len(keys) > 0 {
		tag = labelTag(keys[0], sel[keys[0]])
		if len(tag) > 255 {
			return nil, nil // no droplet can carry it
		}
	}
	all, err := p.list(ctx, tag)
	if err != nil {
		return nil, err
	}
	out := make([]compute.Instance, 0, len(all))
	for _, d := range all {
		if _, _, ours := fromTags(d.Tags); !ours {
			continue
		}
		if in := p.instance(d); sel.Matches(in.Labels) {
			out = append(out, in)
		}
	}
	return out, nil
}

// Terminate implements compute.Provider: it tags the droplet's token as gone (so the token is
// not launched again), then deletes the droplet, which deletes its disk. An unknown droplet is
// not an error. It does not wait for the droplet to be gone.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("digitalocean: %w", err)
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 {
		return nil // no droplet has such an ID
	}
	d, err := p.get(ctx, n)
	if doapi.NotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("digitalocean: terminating droplet %s: %w", id, err)
	}
	for _, t := range d.Tags {
		if h, ok := strings.CutPrefix(t, tokenTagPrefix); ok {
			if err := p.createTag(ctx, goneTagPrefix+h); err != nil {
				return fmt.Errorf("digitalocean: terminating droplet %s: %w", id, err)
			}
		}
	}
	return p.deleteDroplet(ctx, n)
}

func (p *Provider) deleteDroplet(ctx context.Context, id int) error {
	_, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("deleting droplet %d", id), func(ctx context.Context) (struct{}, *godo.Response, error) {
		res, err := p.c.Droplets.Delete(ctx, id)
		return struct{}{}, res, err
	})
	if err != nil && !doapi.NotFound(err) {
		return fmt.Errorf("digitalocean: %w", err)
	}
	return nil
}

func (p *Provider) get(ctx context.Context, id int) (*godo.Droplet, error) {
	d, _, err := doapi.Do(ctx, p.c, fmt.Sprintf("reading droplet %d", id), func(ctx context.Context) (*godo.Droplet, *godo.Response, error) {
		return p.c.Droplets.Get(ctx, id)
	})
	return d, err
}

// list returns every droplet with tag, over all pages.
func (p *Provider) list(ctx context.Context, tag string) ([]godo.Droplet, error) {
	ds, err := doapi.All(ctx, p.c, fmt.Sprintf("listing droplets tagged %s", tag), p.perPage, func(ctx context.Context, opt *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		return p.c.Droplets.ListByTag(ctx, tag, opt)
	})
	if err != nil {
		return nil, fmt.Errorf("digitalocean: %w", err)
	}
	return ds, nil
}

func (p *Provider) tagExists(ctx context.Context, tag string) (bool, error) {
	_, _, err := doapi.Do(ctx, p.c, "reading tag "+tag, func(ctx context.Context) (*godo.Tag, *godo.Response, error) {
		return p.c.Tags.Get(ctx, tag)
	})
	if doapi.NotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("digitalocean: %w", err)
	}
	return true, nil
}

func (p *Provider) createTag(ctx context.Context, tag string) error {
	_, _, err := doapi.Do(ctx, p.c, "creating tag "+tag, func(ctx context.Context) (*godo.Tag, *godo.Response, error) {
		return p.c.Tags.Create(ctx, &godo.TagCreateRequest{Name: tag})
	})
	return err
}

// instance converts the API's droplet.
func (p *Provider) instance(d godo.Droplet) compute.Instance {
	labels, ports, _ := fromTags(d.Tags)
	in := compute.Instance{ID: strconv.Itoa(d.ID), Name: d.Name, Labels: labels, Ports: ports, State: state(d.Status),
		Address: publicIPv4(&d)}
	if t, err := time.Parse(time.RFC3339, d.Created); err == nil {
		in.Created = t
	}
	return in
}

func publicIPv4(d *godo.Droplet) netip.Addr {
	s, _ := d.PublicIPv4()
	a, _ := netip.ParseAddr(s)
	return a
}

func state(s string) compute.State {
	switch s {
	case "new":
		return compute.Pending
	case "active":
		return compute.Running
	case "off":
		return compute.Stopped
	default: // archive
		return compute.Terminated
	}
}
