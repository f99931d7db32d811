package cloudflare

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cfdns "github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/packages/pagination"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/internal/keylock"
)

var _ dns.Provider = (*Provider)(nil)

// Provider reads and replaces record sets of one Cloudflare zone.
//
// Cloudflare has records, not record sets, and no conditional writes, so ReplaceSet is not
// atomic: it reads the records of the name and type, checks the precondition against them, and
// then sends the difference (deletes, TTL patches, creates) in one request: a batch
// (POST /zones/{id}/dns_records/batch, applied by Cloudflare in one database transaction) when
// there is more than one change, the plain endpoint otherwise. A change made by someone else
// between the read and the write is not detected. Cloudflare's edge picks a batch up record by
// record, so resolvers can briefly see a mix of old and new records.
//
// It is safe for concurrent use: ReplaceSets of the same set from one Provider are serialized,
// those of different sets run in parallel. Every request goes through the retry policy (see
// Retry); the token never appears in errors or in the Config's String.
type Provider struct {
	zone    string // "example.com."
	zoneID  string
	proxied *bool
	perPage int
	records *cfdns.RecordService
	locks   keylock.Locks[key]
}

// Option adjusts a Provider.
type Option func(*options)

type options struct {
	retry   Retry
	perPage int
	client  *http.Client
	timeout time.Duration
}

// DefaultRequestTimeout bounds each API request (connect, send, the whole answer) of the default
// HTTP client: an API that accepts the connection and never answers fails the call, and the retry
// policy decides what next.
const DefaultRequestTimeout = 30 * time.Second

// WithRequestTimeout replaces DefaultRequestTimeout (for the default client; a client given with
// WithHTTPClient keeps its own Timeout).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetry replaces the retry policy (DefaultRetry).
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithPageSize sets how many records one list request asks for (default 100).
func WithPageSize(n int) Option { return func(o *options) { o.perPage = n } }

// WithHTTPClient sets the HTTP client of the API requests (default: an http.Client whose Timeout
// is the request timeout).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// New finds the zone cfg.Zone with the token cfg.Token (GET /zones?name=) and returns its
// provider. It fails if the token is missing or rejected, or if no zone, or more than one,
// has the name.
func New(ctx context.Context, cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("dns/cloudflare: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns/cloudflare: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("dns/cloudflare: no API token: set CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_TOKEN_FILE")
	}
	o := options{retry: DefaultRetry(), perPage: 100, timeout: DefaultRequestTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.retry.validate(); err != nil {
		return nil, err
	}
	if o.perPage < 1 {
		return nil, fmt.Errorf("dns/cloudflare: page size %d: want at least 1", o.perPage)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("dns/cloudflare: request timeout %s: want more than 0", o.timeout)
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: o.timeout}
	}
	base := []option.RequestOption{
		option.WithEnvironmentProduction(),
		option.WithAPIToken(cfg.Token),
		option.WithHTTPClient(o.client),
		option.WithMaxRetries(0),
		option.WithMiddleware(o.retry.middleware),
	}
	if cfg.APIURL != "" {
		base = append(base, option.WithBaseURL(cfg.APIURL))
	}
	p := &Provider{
		zone:    dns.Fqdn(strings.ToLower(cfg.Zone)),
		proxied: cfg.Proxied,
		perPage: o.perPage,
		records: cfdns.NewRecordService(base...),
	}
	id, err := p.findZone(ctx, zones.NewZoneService(base...))
	if err != nil {
		return nil, fmt.Errorf("dns/cloudflare: %w", err)
	}
	p.zoneID = id
	return p, nil
}

func (p *Provider) findZone(ctx context.Context, svc *zones.ZoneService) (string, error) {
	name := strings.TrimSuffix(p.zone, ".")
	var q zones.ZoneListParams
	q.Name.Value, q.Name.Present = name, true
	q.PerPage.Value, q.PerPage.Present = 50, true
	op := fmt.Sprintf("looking up zone %q", name)
	ctx, c := withCall(ctx)
	res, err := svc.List(ctx, q)
	if err != nil {
		return "", apiError(op, err, c)
	}
	var found []zones.Zone
	for _, z := range res.Result {
		if strings.EqualFold(z.Name, name) {
			found = append(found, z)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: no such zone, or the token may not read it", op)
	case 1:
		return found[0].ID, nil
	default:
		var ids []string
		for _, z := range found {
			ids = append(ids, fmt.Sprintf("%s (account %q)", z.ID, z.Account.Name))
		}
		return "", fmt.Errorf("%s: %d zones have that name: %s; use a token scoped to one account", op, len(found), strings.Join(ids, ", "))
	}
}

// Zone returns the zone's apex, "example.com.".
func (p *Provider) Zone() string { return p.zone }

// ZoneID returns Cloudflare's identifier of the zone.
func (p *Provider) ZoneID() string { return p.zoneID }

// Set returns the set of name and typ: the records' contents, and the lowest of their TTLs (1
// means automatic, which is also the TTL of proxied records). It reads every page of the list.
func (p *Provider) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := ctx.Err(); err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/cloudflare: %w", err)
	}
	k, err := p.check(name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	recs, err := p.list(ctx, k)
	if err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/cloudflare: %w", err)
	}
	return toSet(k, recs), nil
}

// ReplaceSet makes the records of want.Name and want.Type exactly want's values, with want's
// TTL (0 means 1, automatic). Records whose content is wanted are kept, with their proxy status
// and comment (their TTL is patched if it differs, unless they are proxied: Cloudflare gives
// proxied records an automatic TTL); the others are deleted, and the missing values created
// with Config.Proxied, or, when it is unset, proxied if every record they replace was. It is
// idempotent: when the records already match, it sends no write.
//
// prev is compared with a read made just before the write (see Provider: not atomic), and a
// mismatch wraps dns.ErrConflict with nothing changed. All the changes go in one request, which
// Cloudflare applies whole or not at all, so a failed ReplaceSet leaves the records as they were,
// or, when the outcome of its write is unknown (a connection broken after sending it), either as
// they were or as wanted: Set shows which, and the same ReplaceSet again finishes the job.
func (p *Provider) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns/cloudflare: %w", err)
	}
	k, err := p.check(want.Name, want.Type)
	if err != nil {
		return err
	}
	want, err = canonical(k, want)
	if err != nil {
		return err
	}
	if want.TTL == 0 {
		want.TTL = 1
	}
	if k.typ == "CNAME" && len(want.Values) > 1 {
		return fmt.Errorf("dns/cloudflare: %s CNAME: %d values, a CNAME set has one", k.name, len(want.Values))
	}
	var before *dns.RecordSet
	if prev != nil {
		pk, err := p.check(prev.Name, prev.Type)
		if err != nil {
			return err
		}
		if pk != k {
			return fmt.Errorf("dns/cloudflare: precondition is the set of %s %s, not of %s %s", pk.name, pk.typ, k.name, k.typ)
		}
		c, err := canonical(k, *prev)
		if err != nil {
			return err
		}
		before = &c
	}
	unlock, err := p.locks.Lock(ctx, k)
	if err != nil {
		return fmt.Errorf("dns/cloudflare: %w", err)
	}
	defer unlock()

	// A write that fails because a record appeared or vanished since the read (someone else's
	// change, or a retried write that had in fact been applied) is planned again from a new read.
	const replans = 3
	for try := 1; ; try++ {
		recs, err := p.list(ctx, k)
		if err != nil {
			return fmt.Errorf("dns/cloudflare: %w", err)
		}
		cur := toSet(k, recs)
		if before != nil && !sameSet(cur, *before) {
			if try > 1 && cur.Equal(want) {
				return nil // our own earlier write went through
			}
			return fmt.Errorf("dns/cloudflare: %s %s is %v, not %v: %w", k.name, k.typ, cur, *before, dns.ErrConflict)
		}
		pl := p.plan(k, recs, want)
		if pl.empty() {
			return nil
		}
		err = p.apply(ctx, k, pl)
		if err == nil {
			return nil
		}
		var apiErr *APIError
		raced := errors.As(err, &apiErr) &&
			(apiErr.HasCode(codeRecordMissing) || apiErr.HasCode(codeRecordExists) || apiErr.HasCode(codeIdenticalExists))
		if !raced || try >= replans {
			return fmt.Errorf("dns/cloudflare: %w", err)
		}
	}
}

// key names one record set: a lower-case fully qualified name and an upper-case type.
type key struct{ name, typ string }

func (p *Provider) check(name, typ string) (key, error) {
	n := dns.Fqdn(strings.ToLower(name))
	if n != p.zone && !strings.HasSuffix(n, "."+p.zone) {
		return key{}, fmt.Errorf("dns/cloudflare: name %q is outside zone %q", name, p.zone)
	}
	switch t := strings.ToUpper(typ); t {
	case "A", "AAAA", "CNAME", "TXT":
		return key{n, t}, nil
	default:
		return key{}, fmt.Errorf("dns/cloudflare: type %q (want A, AAAA, CNAME or TXT): %w", typ, dns.ErrUnsupportedType)
	}
}

// record is the part of a Cloudflare record drover looks at.
type record struct {
	id      string
	value   string // canonical presentation form
	ttl     uint32
	proxied bool
}

// maxPages bounds a listing, in case a server keeps answering full pages.
const maxPages = 1000

// list returns every record of k, following the pages of GET /zones/{id}/dns_records.
func (p *Provider) list(ctx context.Context, k key) ([]record, error) {
	op := fmt.Sprintf("listing records of %s %s", k.name, k.typ)
	var q cfdns.RecordListParams
	q.ZoneID.Value, q.ZoneID.Present = p.zoneID, true
	q.Name.Value.Exact.Value, q.Name.Value.Exact.Present, q.Name.Present = strings.TrimSuffix(k.name, "."), true, true
	q.Type.Value, q.Type.Present = cfdns.RecordListParamsType(k.typ), true
	q.PerPage.Value, q.PerPage.Present = float64(p.perPage), true
	var out []record
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: more than %d pages", op, maxPages)
		}
		q.Page.Value, q.Page.Present = float64(page), true
		cctx, c := withCall(ctx)
		res, err := p.records.List(cctx, q)
		if err != nil {
			return nil, apiError(op, err, c)
		}
		for _, r := range res.Result {
			// The API filters by name and type; check anyway rather than touch a stranger.
			if !strings.EqualFold(dns.Fqdn(r.Name), k.name) || !strings.EqualFold(string(r.Type), k.typ) {
				continue
			}
			out = append(out, record{id: r.ID, value: canonValue(k.typ, r.Content), ttl: uint32(r.TTL), proxied: r.Proxied})
		}
		if lastPage(res.ResultInfo, page, len(res.Result)) {
			return out, nil
		}
	}
}

// lastPage reports whether page, holding n results, is the last one: by result_info.total_pages
// when the response has it, else by a short page.
func lastPage(ri pagination.V4PagePaginationArrayResultInfo, page, n int) bool {
	if f, ok := ri.JSON.ExtraFields["total_pages"]; ok {
		if total, ok := parseInt(f.Raw()); ok {
			return int64(page) >= total
		}
	}
	return n == 0 || int64(n) < ri.PerPage
}

// toSet makes the record set of k from its records.
func toSet(k key, recs []record) dns.RecordSet {
	s := dns.RecordSet{Name: k.name, Type: k.typ}
	for i, r := range recs {
		s.Values = append(s.Values, r.value)
		if i == 0 || r.ttl < s.TTL {
			s.TTL = r.ttl
		}
	}
	return s.Normalize()
}

// sameSet is the precondition test: an empty prev means no records, whatever its TTL.
func sameSet(cur, prev dns.RecordSet) bool {
	if cur.Empty() || prev.Empty() {
		return cur.Empty() == prev.Empty()
	}
	return cur.Equal(prev)
}

// canonical returns s with k's name and type and its values in the form Cloudflare returns.
func canonical(k key, s dns.RecordSet) (dns.RecordSet, error) {
	s.Name, s.Type = k.name, k.typ
	vals := make([]string, 0, len(s.Values))
	for _, v := range s.Values {
		switch k.typ {
		case "A", "AAAA":
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" || (k.typ == "A") != a.Is4() {
				return s, fmt.Errorf("dns/cloudflare: %s %s: value %q is not an IPv%s address", k.name, k.typ, v, map[bool]string{true: "4", false: "6"}[k.typ == "A"])
			}
		case "CNAME":
			if strings.TrimSuffix(v, ".") == "" {
				return s, fmt.Errorf("dns/cloudflare: %s CNAME: empty target", k.name)
			}
		}
		vals = append(vals, canonValue(k.typ, v))
	}
	s.Values = vals
	return s.Normalize(), nil
}

// canonValue is the presentation form of a record's content: addresses as netip prints them, a
// CNAME target lower case and fully qualified, TXT as it is.
func canonValue(typ, content string) string {
	switch typ {
	case "A", "AAAA":
		if a, err := netip.ParseAddr(content); err == nil {
			return a.String()
		}
	case "CNAME":
		return dns.Fqdn(strings.ToLower(content))
	}
	return content
}

// content is the value as Cloudflare's content field takes it.
func content(typ, value string) string {
	if typ == "CNAME" {
		return strings.TrimSuffix(value, ".")
	}
	return value
}

// plan is the writes that turn the records of a set into the wanted ones.
type plan struct {
	deletes []string
	patches []patch
	posts   []post
}

type patch struct {
	id  string
	ttl uint32
}

type post struct {
	value   string
	ttl     uint32
	proxied *bool
}

func (pl plan) empty() bool { return len(pl.deletes)+len(pl.patches)+len(pl.posts) == 0 }

func (pl plan) size() int { return len(pl.deletes) + len(pl.patches) + len(pl.posts) }

func (p *Provider) plan(k key, recs []record, want dns.RecordSet) plan {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(a.id, b.id) })
	wanted := map[string]bool{}
	for _, v := range want.Values {
		wanted[v] = true
	}
	var pl plan
	kept := map[string]bool{}
	allProxied := len(recs) > 0
	for _, r := range recs {
		allProxied = allProxied && r.proxied
		if wanted[r.value] && !kept[r.value] {
			kept[r.value] = true
			if !r.proxied && r.ttl != want.TTL {
				pl.patches = append(pl.patches, patch{id: r.id, ttl: want.TTL})
			}
			continue
		}
		pl.deletes = append(pl.deletes, r.id)
	}
	var proxied *bool
	if k.typ != "TXT" {
		proxied = p.proxied
		if proxied == nil {
			proxied = &allProxied
		}
	}
	for _, v := range want.Values {
		if !kept[v] {
			pl.posts = append(pl.posts, post{value: v, ttl: want.TTL, proxied: proxied})
		}
	}
	return pl
}

// apply sends the plan: one batch request, or the plain endpoint for a single change.
func (p *Provider) apply(ctx context.Context, k key, pl plan) error {
	cctx, c := withCall(ctx)
	var op string
	var err error
	switch {
	case pl.size() > 1:
		op = fmt.Sprintf("changing %s %s (batch of %d deletes, %d patches, %d creates)", k.name, k.typ, len(pl.deletes), len(pl.patches), len(pl.posts))
		_, err = p.records.Batch(cctx, p.batch(k, pl))
	case len(pl.deletes) == 1:
		op = fmt.Sprintf("deleting record %s of %s %s", pl.deletes[0], k.name, k.typ)
		var q cfdns.RecordDeleteParams
		q.ZoneID.Value, q.ZoneID.Present = p.zoneID, true
		_, err = p.records.Delete(cctx, pl.deletes[0], q)
	case len(pl.patches) == 1:
		op = fmt.Sprintf("setting the TTL of record %s of %s %s", pl.patches[0].id, k.name, k.typ)
		var body cfdns.RecordEditParamsBody
		body.TTL.Value, body.TTL.Present = cfdns.TTL(pl.patches[0].ttl), true
		var q cfdns.RecordEditParams
		q.ZoneID.Value, q.ZoneID.Present = p.zoneID, true
		q.Body = body
		_, err = p.records.Edit(cctx, pl.patches[0].id, q)
	default:
		n := pl.posts[0]
		op = fmt.Sprintf("creating %s %s %s", k.name, k.typ, n.value)
		var body cfdns.RecordNewParamsBody
		body.Name.Value, body.Name.Present = strings.TrimSuffix(k.name, "."), true
		body.Type.Value, body.Type.Present = cfdns.RecordNewParamsBodyType(k.typ), true
		body.Content.Value, body.Content.Present = content(k.typ, n.value), true
		body.TTL.Value, body.TTL.Present = cfdns.TTL(n.ttl), true
		if n.proxied != nil {
			body.Proxied.Value, body.Proxied.Present = *n.proxied, true
		}
		var q cfdns.RecordNewParams
		q.ZoneID.Value, q.ZoneID.Present = p.zoneID, true
		q.Body = body
		_, err = p.records.New(cctx, q)
	}
	if err != nil {
		return apiError(op, err, c)
	}
	return nil
}

func (p *Provider) batch(k key, pl plan) cfdns.RecordBatchParams {
	var q cfdns.RecordBatchParams
	q.ZoneID.Value, q.ZoneID.Present = p.zoneID, true
	if len(pl.deletes) > 0 {
		var dels []cfdns.RecordBatchParamsDelete
		for _, id := range pl.deletes {
			var d cfdns.RecordBatchParamsDelete
			d.ID.Value, d.ID.Present = id, true
			dels = append(dels, d)
		}
		q.Deletes.Value, q.Deletes.Present = dels, true
	}
	if len(pl.patches) > 0 {
		var patches []cfdns.BatchPatchUnionParam
		for _, pa := range pl.patches {
			patches = append(patches, batchPatch(k.typ, pa))
		}
		q.Patches.Value, q.Patches.Present = patches, true
	}
	if len(pl.posts) > 0 {
		var posts []cfdns.RecordBatchParamsPostUnion
		for _, n := range pl.posts {
			var r cfdns.RecordBatchParamsPost
			r.Name.Value, r.Name.Present = strings.TrimSuffix(k.name, "."), true
			r.Type.Value, r.Type.Present = cfdns.RecordBatchParamsPostsType(k.typ), true
			r.Content.Value, r.Content.Present = content(k.typ, n.value), true
			r.TTL.Value, r.TTL.Present = cfdns.TTL(n.ttl), true
			if n.proxied != nil {
				r.Proxied.Value, r.Proxied.Present = *n.proxied, true
			}
			posts = append(posts, r)
		}
		q.Posts.Value, q.Posts.Present = posts, true
	}
	return q
}

// batchPatch is a batch patch of a record's TTL. The library has one patch type per record type.
func batchPatch(typ string, pa patch) cfdns.BatchPatchUnionParam {
	switch typ {
	case "A":
		var r cfdns.BatchPatchARecordParam
		r.ID.Value, r.ID.Present = pa.id, true
		r.TTL.Value, r.TTL.Present = cfdns.TTL(pa.ttl), true
		return r
	case "AAAA":
		var r cfdns.BatchPatchAAAARecordParam
		r.ID.Value, r.ID.Present = pa.id, true
		r.TTL.Value, r.TTL.Present = cfdns.TTL(pa.ttl), true
		return r
	case "CNAME":
		var r cfdns.BatchPatchCNAMERecordParam
		r.ID.Value, r.ID.Present = pa.id, true
		r.TTL.Value, r.TTL.Present = cfdns.TTL(pa.ttl), true
		return r
	default: // TXT; check allows no other type
		var r cfdns.BatchPatchTXTRecordParam
		r.ID.Value, r.ID.Present = pa.id, true
		r.TTL.Value, r.TTL.Present = cfdns.TTL(pa.ttl), true
		return r
	}
}

// parseInt reads a JSON number field's raw text.
func parseInt(raw string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	return n, err == nil
}
