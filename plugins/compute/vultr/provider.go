package vultr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/backoff"
	"github.com/drover-dev/drover/plugins/internal/keylock"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

var (
	_ compute.Provider = (*Provider)(nil)
	_ compute.Stopper  = (*Provider)(nil)
)

// Provider launches Vultr instances in one region from published snapshots.
//
// What it knows is on the platform: an instance carries its labels, token and ports as tags
// (tags.go), so a new process finds what an earlier one launched. Vultr has no idempotency token,
// so Launch looks the token's tag up before creating, and after creating looks again: when two
// processes raced one token, the oldest instance wins and the other is deleted. Launches of one
// token are serialized within the process. Vultr forgets a deleted instance at once, so the
// tokens of instances Terminate destroyed are remembered by the process only (for TokenMemory):
// a Launch of such a token from another process would start a new instance.
//
// Requests answered 429 (Vultr's rate limit, 30 requests a second) or 5xx are retried by govultr,
// waiting what Retry-After says. Safe for concurrent use.
type Provider struct {
	cfg      Config
	c        *govultr.Client
	poll     time.Duration
	pageSize int

	store ObjectStore // where Publish uploads disks; nil: Publish refuses

	launching  keylock.Locks[string]
	publishing keylock.Locks[string] // by image identity
	volumes    keylock.Locks[string] // by block ID, and by "token:" and a CreateVolume token

	mu   sync.Mutex
	gone map[string]goneInstance // token tag -> an instance Terminate destroyed
}

type goneInstance struct {
	in compute.Instance
	at time.Time
}

// New returns the provider of cfg. It makes no request.
func New(cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("vultr: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("vultr: no API key: set VULTR_API_KEY (or VULTR_API_KEY_FILE)")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	url := cfg.APIURL
	if url == "" {
		url = DefaultAPIURL
	}
	c, err := newClient(url, cfg.APIKey, o)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: *cfg, c: c, poll: o.poll, pageSize: o.pageSize, store: o.store, gone: map[string]goneInstance{}}, nil
}

// Region is the region the provider works in.
func (p *Provider) Region() string { return p.cfg.Region }

// Client is the provider's govultr client, for the vultr ip type to share.
func (p *Provider) Client() *govultr.Client { return p.c }

// Launch implements compute.Provider: it creates an instance from spec.Image.Published (a
// snapshot of the provider's region) with the block's plan and VPC, the spec's labels, token and
// ports as tags and its user data, and returns once Vultr reports it active with its main IP.
//
// When Vultr refuses the create (a plan sold out in the region, an account limit), nothing was
// started and the error carries Vultr's reason. When ctx ends after the create, the instance is
// left with its tags, and a retry of the token adopts it.
func (p *Provider) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Instance{}, fmt.Errorf("vultr: %w", err)
	}
	if err := spec.RefuseCloudRole("vultr"); err != nil {
		return compute.Instance{}, err
	}
	img := spec.Image.Published
	if img.ID == "" {
		return compute.Instance{}, fmt.Errorf("vultr: spec %q has no published snapshot (Image.Published): publish image %s first", spec.Name, spec.Image.Identity)
	}
	unlock, err := p.launching.Lock(ctx, spec.Token)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	tag := tokenTag(spec.Token)
	if in, ok := p.terminated(tag); ok {
		return in, nil
	}
	found, err := p.byTag(ctx, tag)
	if err != nil {
		return compute.Instance{}, fmt.Errorf("vultr: looking up token %q: %w", spec.Token, err)
	}
	if len(found) == 0 {
		req := &govultr.InstanceCreateReq{
			Region: p.cfg.Region, Plan: p.cfg.Plan, Label: spec.Name, Hostname: hostname(spec.Name),
			Tags: instanceTags(spec, p.cfg.Tags), SnapshotID: img.ID, UserData: base64.StdEncoding.EncodeToString(spec.UserData),
		}
		if p.cfg.VPC != "" {
			req.AttachVPC = []string{p.cfg.VPC}
		}
		if _, resp, err := p.c.Instance.Create(ctx, req); err != nil {
			if s := status(resp); s >= 400 && s < 500 && s != 429 {
				return compute.Instance{}, fmt.Errorf("vultr: Vultr refused to launch %q as %s in %s from snapshot %s (nothing was started): %w", spec.Name, p.cfg.Plan, p.cfg.Region, img.ID, err)
			}
			return compute.Instance{}, fmt.Errorf("vultr: launching %q: %w", spec.Name, vultrapi.CtxErr(ctx, err))
		}
		if found, err = p.byTag(ctx, tag); err != nil {
			return compute.Instance{}, fmt.Errorf("vultr: looking up token %q after launching: %w", spec.Token, err)
		}
		if len(found) == 0 {
			return compute.Instance{}, fmt.Errorf("vultr: instance of token %q created but not listed by tag %q", spec.Token, tag)
		}
	}
	keep, err := p.keepOldest(ctx, found)
	if err != nil {
		return compute.Instance{}, err
	}
	if in := p.instance(keep); in.State != compute.Pending {
		return in, nil // an earlier Launch's instance, in whatever state it is now
	}
	return p.waitActive(ctx, keep.ID)
}

// keepOldest deletes all but the oldest of the instances of one token (two processes raced it)
// and returns the oldest.
func (p *Provider) keepOldest(ctx context.Context, ins []govultr.Instance) (govultr.Instance, error) {
	sort.Slice(ins, func(i, j int) bool {
		if ins[i].DateCreated != ins[j].DateCreated {
			return parseTime(ins[i].DateCreated).Before(parseTime(ins[j].DateCreated))
		}
		return ins[i].ID < ins[j].ID
	})
	for _, extra := range ins[1:] {
		if err := p.c.Instance.Delete(ctx, extra.ID); err != nil && vultrapi.Status(err) != 404 {
			return govultr.Instance{}, fmt.Errorf("vultr: deleting %s, a second instance of one token: %w", extra.ID, vultrapi.CtxErr(ctx, err))
		}
	}
	return ins[0], nil
}

// waitActive polls instance id until Vultr reports it active with a main IP.
func (p *Provider) waitActive(ctx context.Context, id string) (compute.Instance, error) {
	wait := min(100*time.Millisecond, p.poll)
	for {
		v, _, err := p.c.Instance.Get(ctx, id)
		if err != nil {
			return compute.Instance{}, fmt.Errorf("vultr: waiting for instance %s to be active: %w", id, vultrapi.CtxErr(ctx, err))
		}
		if in := p.instance(*v); in.State == compute.Running && in.Address.IsValid() {
			return in, nil
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return compute.Instance{}, fmt.Errorf("vultr: waiting for instance %s to be active: %w", id, err)
		}
		wait = min(2*wait, p.poll)
	}
}

// Instances implements compute.Provider: Vultr filters by the selector's first label tag, the
// rest is matched here. Pages are followed by their cursor.
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	all, err := p.list(ctx, selectorTag(sel))
	if err != nil {
		return nil, fmt.Errorf("vultr: listing instances: %w", err)
	}
	out := []compute.Instance{}
	for _, v := range all {
		if v.Region != p.cfg.Region {
			continue
		}
		if t := parseTags(v.Tags); t.token != "" && sel.Matches(t.labels) {
			out = append(out, p.instance(v))
		}
	}
	return out, nil
}

// byTag lists the instances carrying tag in the provider's region.
func (p *Provider) byTag(ctx context.Context, tag string) ([]govultr.Instance, error) {
	all, err := p.list(ctx, tag)
	var out []govultr.Instance
	for _, v := range all {
		if v.Region == p.cfg.Region {
			out = append(out, v)
		}
	}
	return out, err
}

// list is every instance with tag ("" for all), following meta.links.next.
func (p *Provider) list(ctx context.Context, tag string) ([]govultr.Instance, error) {
	opts := &govultr.ListOptions{PerPage: p.pageSize, Tag: tag}
	var out []govultr.Instance
	for {
		page, meta, _, err := p.c.Instance.List(ctx, opts)
		if err != nil {
			return nil, vultrapi.CtxErr(ctx, err)
		}
		out = append(out, page...)
		if meta == nil || meta.Links == nil || meta.Links.Next == "" {
			return out, nil
		}
		opts.Cursor = meta.Links.Next
	}
}

// Terminate implements compute.Provider with a delete; an instance Vultr does not know is gone.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	v, _, err := p.c.Instance.Get(ctx, id)
	if vultrapi.Status(err) == 404 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vultr: terminating %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	if err := p.c.Instance.Delete(ctx, id); err != nil && vultrapi.Status(err) != 404 {
		return fmt.Errorf("vultr: terminating %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	if tag := parseTags(v.Tags).token; tag != "" {
		in := p.instance(*v)
		in.State = compute.Terminated
		p.mu.Lock()
		p.gone[tokenTagPrefix+tag] = goneInstance{in, time.Now()}
		p.mu.Unlock()
	}
	return nil
}

// terminated returns the instance of a token tag that Terminate destroyed, within TokenMemory.
func (p *Provider) terminated(tag string) (compute.Instance, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, g := range p.gone {
		if time.Since(g.at) > compute.TokenMemory {
			delete(p.gone, k)
		}
	}
	g, ok := p.gone[tag]
	return g.in.Clone(), ok
}

// Stop implements compute.Stopper with a halt, and waits until Vultr reports the power off.
func (p *Provider) Stop(ctx context.Context, id string) error {
	if err := p.power(ctx, id, "halt", p.c.Instance.Halt); err != nil {
		return err
	}
	wait := min(100*time.Millisecond, p.poll)
	for {
		v, _, err := p.c.Instance.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("vultr: waiting for %s to stop: %w", id, vultrapi.CtxErr(ctx, err))
		}
		if v.PowerStatus == "stopped" {
			return nil
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("vultr: waiting for %s to stop: %w", id, err)
		}
		wait = min(2*wait, p.poll)
	}
}

// Start implements compute.Stopper; it returns once Vultr accepted the start.
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.power(ctx, id, "start", p.c.Instance.Start)
}

func (p *Provider) power(ctx context.Context, id, verb string, do func(context.Context, string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	err := do(ctx, id)
	if vultrapi.Status(err) == 404 {
		return fmt.Errorf("vultr: %s %s: %w", verb, id, compute.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("vultr: %s %s: %w", verb, id, vultrapi.CtxErr(ctx, err))
	}
	return nil
}

// instance is the compute.Instance of a Vultr instance.
func (p *Provider) instance(v govultr.Instance) compute.Instance {
	t := parseTags(v.Tags)
	in := compute.Instance{ID: v.ID, Name: v.Label, Labels: t.labels, Ports: t.ports, Created: parseTime(v.DateCreated)}
	if a, err := netip.ParseAddr(v.MainIP); err == nil && !a.IsUnspecified() {
		in.Address = a
	}
	switch {
	case v.Status == "pending":
		in.State = compute.Pending
	case v.PowerStatus == "stopped" || v.Status == "suspended":
		in.State = compute.Stopped
	case v.Status == "active":
		in.State = compute.Running
	default: // "resizing" and whatever Vultr adds: not yet serving
		in.State = compute.Pending
	}
	return in
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// hostname is a valid hostname made of name: letters, digits and hyphens, at most 63.
func hostname(name string) string {
	b := []byte{}
	for i := 0; i < len(name) && len(b) < 63; i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, '-')
		}
	}
	if len(b) == 0 {
		return "drover"
	}
	return string(b)
}
