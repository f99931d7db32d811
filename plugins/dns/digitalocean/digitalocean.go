package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/internal/rrconv"
	"github.com/drover-dev/drover/plugins/internal/doapi"
	"github.com/drover-dev/drover/plugins/internal/keylock"
)

const component = "dns/digitalocean"

var _ dns.Provider = (*Provider)(nil)

// Provider reads and replaces record sets of one DigitalOcean domain.
//
// DigitalOcean has records, not record sets, no batch endpoint and no conditional writes, so
// ReplaceSet is not atomic: it reads the records of the name and type, checks the precondition
// against them, and then writes record by record. It first changes the records it no longer needs
// into the missing values (PUT, so a cutover from one address to another is one write that
// resolvers see at once), then creates what is still missing (POST) and deletes what is left
// (DELETE): the name never has no records while both the old and the new set have some. A failure
// part way leaves a mix of old and new records of that one set, which Set shows and the same
// ReplaceSet again repairs. A change made by someone else between the read and the writes is not
// detected.
//
// It is safe for concurrent use: ReplaceSets of the same set from one Provider are serialized,
// those of different sets run in parallel. Every request goes through the retry policy (Retry);
// every call has a deadline (Retry.CallTimeout); the token never appears in errors or in the
// Config's String.
type Provider struct {
	zone    string // "example.com."
	domain  string // "example.com", as the API names it
	perPage int
	timeout time.Duration
	domains godo.DomainsService
	locks   keylock.Locks[rrconv.Key]
}

// Option adjusts a Provider.
type Option func(*options)

type options struct {
	retry   Retry
	perPage int
	base    http.RoundTripper
}

// WithRetry replaces the retry policy and deadlines (DefaultRetry).
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithPageSize sets how many records one list request asks for (default 200, the API's maximum).
func WithPageSize(n int) Option { return func(o *options) { o.perPage = n } }

// WithTransport sets the HTTP transport of the API requests (default http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// New checks that the token can read the domain cfg.Zone (GET /v2/domains/{domain}) and returns
// its provider. It fails if the token is missing or refused, or if the account has no such domain.
func New(ctx context.Context, cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("dns/digitalocean: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns/digitalocean: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("dns/digitalocean: no API token: set DIGITALOCEAN_TOKEN or DIGITALOCEAN_TOKEN_FILE")
	}
	o := options{retry: DefaultRetry(), perPage: 200}
	for _, opt := range opts {
		opt(&o)
	}
	if o.perPage < 1 || o.perPage > 200 {
		return nil, fmt.Errorf("dns/digitalocean: page size %d: want 1 to 200", o.perPage)
	}
	client, err := doapi.New(cfg.Token, cfg.APIURL, o.retry, o.base)
	if err != nil {
		return nil, fmt.Errorf("dns/digitalocean: %w", err)
	}
	zone := dns.Fqdn(strings.ToLower(cfg.Zone))
	p := &Provider{
		zone:    zone,
		domain:  strings.TrimSuffix(zone, "."),
		perPage: o.perPage,
		timeout: o.retry.CallTimeout,
		domains: client.Domains,
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ctx, req := doapi.Track(ctx)
	op := fmt.Sprintf("looking up domain %q", p.domain)
	if _, _, err := p.domains.Get(ctx, p.domain); err != nil {
		err = req.Err(op, err)
		var ae *APIError
		if errors.As(err, &ae) {
			switch ae.Status {
			case http.StatusNotFound:
				return nil, fmt.Errorf("dns/digitalocean: %w (the account of the token has no such domain; add it under Networking > Domains)", err)
			case http.StatusUnauthorized:
				return nil, fmt.Errorf("dns/digitalocean: %w (the token from DIGITALOCEAN_TOKEN or DIGITALOCEAN_TOKEN_FILE was refused: expired, revoked or mistyped)", err)
			case http.StatusForbidden:
				return nil, fmt.Errorf("dns/digitalocean: %w (the token may not read the domain: give it the domain scopes)", err)
			}
		}
		return nil, fmt.Errorf("dns/digitalocean: %w", err)
	}
	return p, nil
}

// Zone returns the domain's apex, "example.com.".
func (p *Provider) Zone() string { return p.zone }

// Set returns the set of name and typ: the records' values, and the lowest of their TTLs. It reads
// every page of the list.
func (p *Provider) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := ctx.Err(); err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/digitalocean: %w", err)
	}
	k, err := p.check(name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	recs, err := p.list(ctx, k)
	if err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/digitalocean: %w", err)
	}
	return toSet(k, recs), nil
}

// ReplaceSet makes the records of want.Name and want.Type exactly want's values with want's TTL
// (0 means 1800, DigitalOcean's default; under 30, DigitalOcean's minimum, is refused). It is
// idempotent: when the records already match, it sends no write. prev is compared with a read
// made just before the writes (see Provider: not atomic); a mismatch wraps dns.ErrConflict with
// nothing changed. After writing it reads the set again and, if it still differs (a record
// another client deleted meanwhile, a create retried after it had in fact been applied), writes
// the difference, a bounded number of times.
func (p *Provider) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns/digitalocean: %w", err)
	}
	k, err := p.check(want.Name, want.Type)
	if err != nil {
		return err
	}
	if want, err = canonical(p.zone, k, want); err != nil {
		return err
	}
	switch {
	case want.TTL == 0:
		want.TTL = defaultTTL
	case want.TTL < minTTL:
		return fmt.Errorf("dns/digitalocean: %s %s: TTL %d is under DigitalOcean's minimum of %d seconds", k.Name, k.Type, want.TTL, minTTL)
	}
	if k.Type == "CNAME" && len(want.Values) > 1 {
		return fmt.Errorf("dns/digitalocean: %s CNAME: %d values, a CNAME set has one", k.Name, len(want.Values))
	}
	var before *dns.RecordSet
	if prev != nil {
		pk, err := p.check(prev.Name, prev.Type)
		if err != nil {
			return err
		}
		if pk != k {
			return fmt.Errorf("dns/digitalocean: precondition is the set of %s %s, not of %s %s", pk.Name, pk.Type, k.Name, k.Type)
		}
		c, err := canonical(p.zone, k, *prev)
		if err != nil {
			return err
		}
		before = &c
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	unlock, err := p.locks.Lock(ctx, k)
	if err != nil {
		return fmt.Errorf("dns/digitalocean: %w", err)
	}
	defer unlock()

	const rounds = 3 // of writes; each is followed by a read that checks it
	for round := 0; ; round++ {
		recs, err := p.list(ctx, k)
		if err != nil {
			return fmt.Errorf("dns/digitalocean: %w", err)
		}
		cur := toSet(k, recs)
		if round == 0 && before != nil && !sameSet(cur, *before) {
			return fmt.Errorf("dns/digitalocean: %s %s is %v, not %v: %w", k.Name, k.Type, cur, *before, dns.ErrConflict)
		}
		pl := p.plan(k, recs, want)
		if pl.empty() {
			return nil
		}
		if round == rounds {
			return fmt.Errorf("dns/digitalocean: %s %s is still %v after %d rounds of writes, want %v (another client is changing it?)", k.Name, k.Type, cur, rounds, want)
		}
		if err := p.apply(ctx, k, pl); err != nil && !gone(err) {
			return fmt.Errorf("dns/digitalocean: %w", err)
		}
	}
}

// DigitalOcean's TTLs: the default of a record created without one, and the lowest it accepts.
const (
	defaultTTL = 1800
	minTTL     = 30
)

// check normalizes name and typ and checks that name is in the zone, a name DigitalOcean takes
// (letters, digits, hyphens, underscores, a leading "*" label), and typ one the provider changes.
func (p *Provider) check(name, typ string) (rrconv.Key, error) {
	k, err := rrconv.Check(component, p.zone, name, typ)
	if err != nil {
		return k, err
	}
	for i, label := range strings.Split(strings.TrimSuffix(k.Name, "."), ".") {
		if label == "*" && i == 0 {
			continue
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return rrconv.Key{}, fmt.Errorf("dns/digitalocean: name %q: DigitalOcean takes letters, digits, hyphens and underscores in names", name)
			}
		}
	}
	return k, nil
}

// relative is the name as the API's records hold it: "@" for the apex, else the labels below it.
func (p *Provider) relative(fqdn string) string {
	if fqdn == p.zone {
		return "@"
	}
	return strings.TrimSuffix(fqdn, "."+p.zone)
}

// absolute is the fully qualified name of a record's name.
func (p *Provider) absolute(rel string) string {
	rel = strings.ToLower(strings.TrimSuffix(rel, "."))
	if rel == "@" || rel == "" || rel == p.domain {
		return p.zone
	}
	if strings.HasSuffix(rel, "."+p.domain) { // a name already qualified
		return rel + "."
	}
	return rel + "." + p.zone
}

// maxPages bounds a listing, in case a server keeps sending a next page.
const maxPages = 1000

// list returns every record of k, following the pages of
// GET /v2/domains/{domain}/records?type=&name= until links.pages has no next.
func (p *Provider) list(ctx context.Context, k rrconv.Key) ([]record, error) {
	op := fmt.Sprintf("listing records of %s %s", k.Name, k.Type)
	var out []record
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: more than %d pages", op, maxPages)
		}
		cctx, req := doapi.Track(ctx)
		recs, res, err := p.domains.RecordsByTypeAndName(cctx, p.domain, k.Type, strings.TrimSuffix(k.Name, "."), &godo.ListOptions{Page: page, PerPage: p.perPage})
		if err != nil {
			return nil, req.Err(op, err)
		}
		for _, r := range recs {
			// The API filters by name and type; check anyway rather than touch a stranger.
			if p.absolute(r.Name) != k.Name || !strings.EqualFold(r.Type, k.Type) {
				continue
			}
			out = append(out, record{id: r.ID, value: fromData(p.zone, k.Type, r.Data), ttl: uint32(max(r.TTL, 0))})
		}
		if res == nil || res.Links == nil || res.Links.IsLastPage() {
			return out, nil
		}
	}
}
