package route53

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/internal/backoff"
)

var _ dns.Provider = (*Provider)(nil)

// Provider reads and replaces record sets of one Route 53 hosted zone.
//
// ReplaceSet is one ChangeResourceRecordSets batch, which Route 53 applies whole or not at all,
// followed by GetChange polls until the change is INSYNC (on every Route 53 name server). With a
// precondition the batch deletes exactly the previous set and creates the new one, so Route 53
// itself refuses it when the set changed: the precondition is atomic.
//
// It is safe for concurrent use. Retries are the SDK's: its standard retryer, with drover's
// attempts and backoff (Retry), retries throttling (Throttling, PriorRequestNotComplete, which
// Route 53 answers while it is still applying an earlier change to the zone), 5xx and transport
// errors; the SDK's client-side retry quota is off, so only the attempts bound them.
type Provider struct {
	zone   string // "example.com."
	zoneID string // "Z0123456789ABCDEFGHIJ"
	client *route53.Client
	poll   time.Duration
}

// Retry is the retry policy of every Route 53 request.
type Retry struct {
	// Attempts is the number of tries of one request, the first included.
	Attempts int
	// Base is the backoff before the second try; it doubles each try, up to Max, and each wait is
	// a random duration between half of it and all of it.
	Base time.Duration
	Max  time.Duration
}

// DefaultRetry is the policy New uses unless WithRetry replaces it: 8 attempts, 500 ms doubling
// to 20 s. Route 53 allows five requests a second per account, so a busy account throttles.
func DefaultRetry() Retry {
	return Retry{Attempts: 8, Base: 500 * time.Millisecond, Max: 20 * time.Second}
}

func (r Retry) backoff(attempt int) time.Duration { return backoff.Jittered(r.Base, r.Max, attempt) }

// Option adjusts a Provider.
type Option func(*options)

type options struct {
	creds   aws.CredentialsProvider
	poll    time.Duration
	retry   Retry
	client  *http.Client
	timeout time.Duration
}

// DefaultRequestTimeout bounds each API request (connect, send, the whole answer) of the default
// HTTP client: an API that accepts the connection and never answers fails the call, and the retry
// policy decides what next. A ReplaceSet's wait for INSYNC is many requests, bounded by its ctx.
const DefaultRequestTimeout = 30 * time.Second

// WithRequestTimeout replaces DefaultRequestTimeout (for the default client; a client given with
// WithHTTPClient keeps its own Timeout).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithCredentials uses creds (such as credentials.NewStaticCredentialsProvider) instead of the
// SDK's default chain; the region is then us-east-1, Route 53's signing region.
func WithCredentials(creds aws.CredentialsProvider) Option {
	return func(o *options) { o.creds = creds }
}

// WithPollInterval sets how often ReplaceSet asks whether its change is INSYNC (default 5 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithRetry replaces the retry policy (DefaultRetry).
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithHTTPClient sets the HTTP client of the API requests.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// New returns the provider of the hosted zone cfg.Zone, found with ListHostedZonesByName unless
// cfg.HostedZoneID names it. It fails when no hosted zone, or more than one (a public and a
// private one), has the name.
func New(ctx context.Context, cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("dns/route53: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns/route53: %w", err)
	}
	o := options{poll: 5 * time.Second, retry: DefaultRetry(), timeout: DefaultRequestTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("dns/route53: request timeout %s: want more than 0", o.timeout)
	}
	if o.poll <= 0 {
		return nil, fmt.Errorf("dns/route53: poll interval %s: want more than 0", o.poll)
	}
	if r := o.retry; r.Attempts < 1 || r.Base <= 0 || r.Max < r.Base {
		return nil, fmt.Errorf("dns/route53: retry policy %+v: want Attempts >= 1 and 0 < Base <= Max", r)
	}
	var awsCfg aws.Config
	if o.creds != nil {
		awsCfg = aws.Config{Region: "us-east-1", Credentials: o.creds}
	} else {
		var load []func(*awsconfig.LoadOptions) error
		if cfg.Profile != "" {
			load = append(load, awsconfig.WithSharedConfigProfile(cfg.Profile))
		}
		var err error
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx, load...); err != nil {
			return nil, fmt.Errorf("dns/route53: loading AWS configuration (profile %q): %w", cfg.Profile, err)
		}
		if awsCfg.Region == "" {
			awsCfg.Region = "us-east-1"
		}
	}
	client := route53.NewFromConfig(awsCfg, func(ro *route53.Options) {
		ro.Retryer = retry.AddWithErrorCodes(retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.retry.Attempts
			so.MaxBackoff = o.retry.Max
			so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
				return o.retry.backoff(attempt), nil
			})
			so.RateLimiter = ratelimit.None
		}), "Throttling", "PriorRequestNotComplete") // both are in the SDK's defaults; said here too
		if cfg.Endpoint != "" {
			ro.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if o.client != nil {
			ro.HTTPClient = o.client
		} else {
			ro.HTTPClient = awshttp.NewBuildableClient().WithTimeout(o.timeout)
		}
	})
	p := &Provider{zone: dns.Fqdn(strings.ToLower(cfg.Zone)), client: client, poll: o.poll}
	if cfg.HostedZoneID != "" {
		p.zoneID = strings.TrimPrefix(cfg.HostedZoneID, "/hostedzone/")
		return p, nil
	}
	id, err := p.findZone(ctx)
	if err != nil {
		return nil, fmt.Errorf("dns/route53: %w", err)
	}
	p.zoneID = id
	return p, nil
}

func (p *Provider) findZone(ctx context.Context) (string, error) {
	out, err := p.client.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{
		DNSName:  aws.String(p.zone),
		MaxItems: aws.Int32(100),
	})
	if err != nil {
		return "", fmt.Errorf("looking up hosted zone %q: %w", p.zone, err)
	}
	// The list starts at the name, in DNS order: the zones of the name come first.
	var ids []string
	for _, z := range out.HostedZones {
		if strings.EqualFold(dns.Fqdn(aws.ToString(z.Name)), p.zone) {
			id := strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/")
			if z.Config != nil && z.Config.PrivateZone {
				id += " (private)"
			}
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("looking up hosted zone %q: no such zone, or the credentials may not list it", p.zone)
	case 1:
		return ids[0], nil
	default:
		return "", fmt.Errorf("looking up hosted zone %q: %d hosted zones have that name (%s): set hosted_zone_id", p.zone, len(ids), strings.Join(ids, ", "))
	}
}

// Zone returns the zone's apex, "example.com.".
func (p *Provider) Zone() string { return p.zone }

// HostedZoneID returns the hosted zone's ID, "Z0123456789ABCDEFGHIJ".
func (p *Provider) HostedZoneID() string { return p.zoneID }

// Set returns the set of name and typ as Route 53 holds it (ListResourceRecordSets). A set with a
// routing policy or an alias is an error: drover only handles simple record sets.
func (p *Provider) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := ctx.Err(); err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/route53: %w", err)
	}
	k, err := p.check(name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	s, err := p.read(ctx, k)
	if err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/route53: %w", err)
	}
	return s, nil
}

// ReplaceSet sends one change batch and waits until Route 53 reports it INSYNC, polling
// GetChange. With prev, the batch is a DELETE of exactly *prev (its TTL and values) and a CREATE
// of want, which Route 53 refuses with InvalidChangeBatch when the set differs: the error then
// wraps dns.ErrConflict and nothing changed. Without prev, it is an UPSERT of want, or a DELETE
// of the current set when want is empty; it sends nothing when the set is already want.
//
// The change is applied once Route 53 accepted the batch: a ctx that ends while ReplaceSet waits
// for INSYNC makes it return ctx's error although the change stands (and will reach every name
// server). A batch whose answer was lost and whose retry Route 53 refuses is recognised by
// reading the set: if it is want, ReplaceSet succeeds.
func (p *Provider) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns/route53: %w", err)
	}
	k, err := p.check(want.Name, want.Type)
	if err != nil {
		return err
	}
	want = canonical(k, want)
	if prev == nil {
		return p.replace(ctx, k, want)
	}
	pk, err := p.check(prev.Name, prev.Type)
	if err != nil {
		return err
	}
	if pk != k {
		return fmt.Errorf("dns/route53: precondition is the set of %s %s, not of %s %s", pk.name, pk.typ, k.name, k.typ)
	}
	before := canonical(k, *prev)
	if sameSet(want, before) {
		// Nothing to change; the precondition still has to hold.
		cur, err := p.read(ctx, k)
		if err != nil {
			return fmt.Errorf("dns/route53: %w", err)
		}
		if !sameSet(cur, before) {
			return fmt.Errorf("dns/route53: %s %s is %v, not %v: %w", k.name, k.typ, cur, before, dns.ErrConflict)
		}
		return nil
	}
	var changes []types.Change
	if !before.Empty() {
		changes = append(changes, change(types.ChangeActionDelete, before))
	}
	if !want.Empty() {
		changes = append(changes, change(types.ChangeActionCreate, want))
	}
	id, err := p.change(ctx, k, changes)
	var bad *types.InvalidChangeBatch
	if errors.As(err, &bad) {
		cur, rerr := p.read(ctx, k)
		switch {
		case rerr != nil:
			return fmt.Errorf("dns/route53: %w (and reading the set: %v)", err, rerr)
		case sameSet(cur, want):
			return nil // an earlier try of this batch went through
		case !sameSet(cur, before):
			return fmt.Errorf("dns/route53: %s %s is %v, not %v: %w: %w", k.name, k.typ, cur, before, dns.ErrConflict, err)
		}
	}
	if err != nil {
		return fmt.Errorf("dns/route53: %w", err)
	}
	return p.wait(ctx, k, id)
}

// replace makes the set want without a precondition.
func (p *Provider) replace(ctx context.Context, k key, want dns.RecordSet) error {
	// A DELETE must name the set exactly: if it changes between the read and the batch, Route 53
	// refuses the batch and the set is read again.
	const tries = 3
	for try := 1; ; try++ {
		cur, err := p.read(ctx, k)
		if err != nil {
			return fmt.Errorf("dns/route53: %w", err)
		}
		var c types.Change
		switch {
		case want.Empty() && cur.Empty():
			return nil
		case want.Empty():
			c = change(types.ChangeActionDelete, cur)
		case cur.Equal(want):
			return nil
		default:
			c = change(types.ChangeActionUpsert, want)
		}
		id, err := p.change(ctx, k, []types.Change{c})
		var bad *types.InvalidChangeBatch
		if errors.As(err, &bad) && c.Action == types.ChangeActionDelete && try < tries {
			continue
		}
		if err != nil {
			return fmt.Errorf("dns/route53: %w", err)
		}
		return p.wait(ctx, k, id)
	}
}

func change(action types.ChangeAction, s dns.RecordSet) types.Change {
	rrs := &types.ResourceRecordSet{
		Name: aws.String(s.Name),
		Type: types.RRType(s.Type),
		TTL:  aws.Int64(int64(s.TTL)),
	}
	for _, v := range s.Values {
		rrs.ResourceRecords = append(rrs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return types.Change{Action: action, ResourceRecordSet: rrs}
}

// change sends a batch and returns its change ID.
func (p *Provider) change(ctx context.Context, k key, changes []types.Change) (string, error) {
	var what []string
	for _, c := range changes {
		what = append(what, string(c.Action))
	}
	out, err := p.client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(p.zoneID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("drover: %s %s", k.name, k.typ)),
			Changes: changes,
		},
	})
	if err != nil {
		// Route 53's own InvalidChangeBatch document holds one message per faulty change, which
		// the SDK's error text leaves out.
		var bad *types.InvalidChangeBatch
		if errors.As(err, &bad) && len(bad.Messages) > 0 {
			return "", fmt.Errorf("changing %s %s (%s): %w: %s", k.name, k.typ, strings.Join(what, ", "), err, strings.Join(bad.Messages, "; "))
		}
		return "", fmt.Errorf("changing %s %s (%s): %w", k.name, k.typ, strings.Join(what, ", "), err)
	}
	if out.ChangeInfo == nil || aws.ToString(out.ChangeInfo.Id) == "" {
		return "", fmt.Errorf("changing %s %s: the answer has no change ID", k.name, k.typ)
	}
	return aws.ToString(out.ChangeInfo.Id), nil
}

// wait polls GetChange until the change is INSYNC or ctx ends.
func (p *Provider) wait(ctx context.Context, k key, id string) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("dns/route53: %s %s: change %s accepted, but waiting for INSYNC: %w", k.name, k.typ, id, ctx.Err())
		case <-t.C:
		}
		out, err := p.client.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(id)})
		if err != nil {
			return fmt.Errorf("dns/route53: %s %s: change %s accepted, but asking for its status: %w", k.name, k.typ, id, err)
		}
		if out.ChangeInfo != nil && out.ChangeInfo.Status == types.ChangeStatusInsync {
			return nil
		}
		t.Reset(p.poll)
	}
}

// key names one record set: a lower-case fully qualified name and an upper-case type.
type key struct{ name, typ string }

func (p *Provider) check(name, typ string) (key, error) {
	n := dns.Fqdn(strings.ToLower(name))
	if n != p.zone && !strings.HasSuffix(n, "."+p.zone) {
		return key{}, fmt.Errorf("dns/route53: name %q is outside zone %q", name, p.zone)
	}
	switch t := strings.ToUpper(typ); t {
	case "A", "AAAA", "CNAME", "TXT":
		return key{n, t}, nil
	default:
		return key{}, fmt.Errorf("dns/route53: type %q (want A, AAAA, CNAME or TXT): %w", typ, dns.ErrUnsupportedType)
	}
}

// canonical returns s with k's name and type, sorted and de-duplicated.
func canonical(k key, s dns.RecordSet) dns.RecordSet {
	s.Name, s.Type = k.name, k.typ
	return s.Normalize()
}

// sameSet is the precondition test: an empty set means no records, whatever its TTL.
func sameSet(cur, prev dns.RecordSet) bool {
	if cur.Empty() || prev.Empty() {
		return cur.Empty() == prev.Empty()
	}
	return cur.Equal(prev)
}

// maxPages bounds a listing.
const maxPages = 100

// read lists the record sets from k on and returns k's.
func (p *Provider) read(ctx context.Context, k key) (dns.RecordSet, error) {
	in := &route53.ListResourceRecordSetsInput{
		HostedZoneId:    aws.String(p.zoneID),
		StartRecordName: aws.String(k.name),
		StartRecordType: types.RRType(k.typ),
		MaxItems:        aws.Int32(10),
	}
	s := dns.RecordSet{Name: k.name, Type: k.typ}
	for range maxPages {
		out, err := p.client.ListResourceRecordSets(ctx, in)
		if err != nil {
			return s, fmt.Errorf("listing %s %s: %w", k.name, k.typ, err)
		}
		for _, rrs := range out.ResourceRecordSets {
			if !strings.EqualFold(unescape(aws.ToString(rrs.Name)), k.name) || string(rrs.Type) != k.typ {
				return s.Normalize(), nil // past the set: the list is in DNS order
			}
			if rrs.SetIdentifier != nil || rrs.AliasTarget != nil {
				return s, fmt.Errorf("%s %s has a routing policy or is an alias; drover only changes simple record sets", k.name, k.typ)
			}
			s.TTL = uint32(aws.ToInt64(rrs.TTL))
			for _, r := range rrs.ResourceRecords {
				s.Values = append(s.Values, aws.ToString(r.Value))
			}
		}
		if !out.IsTruncated {
			return s.Normalize(), nil
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
	return s, fmt.Errorf("listing %s %s: more than %d pages", k.name, k.typ, maxPages)
}

// unescape turns Route 53's octal escapes in names (\052 for "*") back into characters.
func unescape(name string) string {
	if !strings.Contains(name, `\`) {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '\\' && i+3 < len(name) {
			if n, err := strconv.ParseUint(name[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}
