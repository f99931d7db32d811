package rfc2136

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/internal/rrconv"
)

var _ dns.Provider = (*Provider)(nil)

const component = "dns/rfc2136"

// exchangeTimeout bounds one query or update when ctx has a later deadline or none.
const exchangeTimeout = 20 * time.Second

// Provider changes one zone at its primary with RFC 2136 updates signed with TSIG, and reads it
// with TSIG-signed queries to the same server over TCP (no truncation, and a server whose ACL
// limits queries answers them).
//
// A Provider holds no state besides its configuration: every call is one TCP exchange, so it is
// safe for concurrent use, and a new Provider (a new process) sees the same zone. It changes the
// record types A, AAAA, CNAME and TXT.
type Provider struct {
	server  string
	zone    string
	keyName string
	alg     string
	secret  string
	// verifyAt are the servers a change is verified at (VerifyAt).
	verifyAt []string
}

// New returns a provider for cfg. It checks cfg, including that a TSIG key name and secret are
// set and that the secret is base64, but does not contact the server.
func New(cfg *Config) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("dns/rfc2136: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns/rfc2136: %w", err)
	}
	if cfg.KeyName == "" {
		return nil, errors.New("dns/rfc2136: key_name is not set: updates are signed with a TSIG key the server's ACL allows")
	}
	if cfg.Secret == "" {
		return nil, fmt.Errorf("dns/rfc2136: no secret for TSIG key %q: set DROVER_TSIG_SECRET or DROVER_TSIG_SECRET_FILE", cfg.KeyName)
	}
	if _, err := base64.StdEncoding.DecodeString(cfg.Secret); err != nil {
		return nil, fmt.Errorf("dns/rfc2136: the secret of TSIG key %q is not base64 (as keymgr -t and tsig-keygen print it): %w", cfg.KeyName, err)
	}
	verifyAt := slices.Clone(cfg.Nameservers)
	if len(verifyAt) == 0 {
		// Without a list, the primary that takes the updates is the one server drover knows.
		verifyAt = []string{cfg.Server}
	}
	return &Provider{
		server:   cfg.Server,
		zone:     dns.Fqdn(strings.ToLower(cfg.Zone)),
		keyName:  mdns.CanonicalName(cfg.KeyName),
		alg:      mdns.Fqdn(cfg.Algorithm),
		secret:   cfg.Secret,
		verifyAt: verifyAt,
	}, nil
}

// VerifyAt implements dns.Verified: the block's nameservers, else the primary.
func (p *Provider) VerifyAt() []string { return slices.Clone(p.verifyAt) }

// Zone returns the zone's apex, fully qualified and lower case.
func (p *Provider) Zone() string { return p.zone }

// Set implements dns.Provider: it asks the primary for the set with one signed, non-recursive
// query over TCP. It changes nothing.
func (p *Provider) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	k, err := rrconv.Check(component, p.zone, name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	m := new(mdns.Msg)
	m.SetQuestion(k.Name, k.RRType)
	m.RecursionDesired = false
	r, err := p.exchange(ctx, m, fmt.Sprintf("querying %s %s", k.Name, k.Type))
	if err != nil {
		return dns.RecordSet{}, err
	}
	switch {
	case r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError:
		return dns.RecordSet{}, p.rcodeError(r, fmt.Sprintf("querying %s %s", k.Name, k.Type))
	case !r.Authoritative:
		return dns.RecordSet{}, fmt.Errorf("dns/rfc2136: querying %s %s: %s is not authoritative for it (a delegated name, or not the zone's primary)", k.Name, k.Type, p.server)
	}
	return rrconv.Set(k, r.Answer), nil
}

// ReplaceSet implements dns.Provider with one signed UPDATE: delete the name's records of the type,
// then add want's. With prev it carries the prerequisite that the set is exactly prev's values
// ("RRset exists, value dependent") or, for an empty prev, that it has no records ("RRset does not
// exist"), so the server applies all of it or none of it; a failed prerequisite is an error
// wrapping dns.ErrConflict. The prerequisite compares values only: RFC 2136 cannot test a TTL.
//
// It is idempotent: an update that changes nothing succeeds. Like the contract's memory reference
// it is strict about prev: once want is in place, a second call with the same stale prev fails with
// ErrConflict, so a caller retrying after an unclear failure compares Set with want first.
//
// If the exchange fails after the update was sent (a timeout, a cut connection, ctx ending), the
// server may or may not have applied it; it never applies part of it. Set tells which.
func (p *Provider) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	k, err := rrconv.Check(component, p.zone, want.Name, want.Type)
	if err != nil {
		return err
	}
	want = want.Normalize()
	rrs, err := rrconv.RRs(component, k, want.TTL, want.Values)
	if err != nil {
		return err
	}
	m := new(mdns.Msg)
	m.SetUpdate(p.zone)
	set := &mdns.ANY{Hdr: mdns.RR_Header{Name: k.Name, Rrtype: k.RRType, Class: mdns.ClassINET}}
	if prev != nil {
		pk, err := rrconv.Check(component, p.zone, prev.Name, prev.Type)
		if err != nil {
			return fmt.Errorf("%w (in the precondition)", err)
		}
		if pk != k {
			return fmt.Errorf("dns/rfc2136: the precondition is about %s %s, the change about %s %s", pk.Name, pk.Type, k.Name, k.Type)
		}
		if prev.Empty() {
			m.RRsetNotUsed([]mdns.RR{set})
		} else {
			prrs, err := rrconv.RRs(component, k, 0, prev.Normalize().Values)
			if err != nil {
				return fmt.Errorf("%w (in the precondition)", err)
			}
			m.Used(prrs)
		}
	}
	m.RemoveRRset([]mdns.RR{set})
	if len(rrs) > 0 {
		m.Insert(rrs)
	}
	what := fmt.Sprintf("updating %s %s to %v", k.Name, k.Type, want.Values)
	r, err := p.exchange(ctx, m, what)
	if err != nil {
		return err
	}
	switch r.Rcode {
	case mdns.RcodeSuccess:
		return nil
	case mdns.RcodeNXRrset, mdns.RcodeYXRrset, mdns.RcodeNameError, mdns.RcodeYXDomain:
		if prev != nil {
			return fmt.Errorf("dns/rfc2136: %s: the server's set is no longer %v (prerequisite failed with %s): %w",
				what, prev.Values, mdns.RcodeToString[r.Rcode], dns.ErrConflict)
		}
	}
	return p.rcodeError(r, what)
}

// exchange signs m, sends it to the server over TCP and returns the reply. Errors name what was
// being done and the server; ctx's end (cancel or deadline) closes the connection and is the error.
func (p *Provider) exchange(ctx context.Context, m *mdns.Msg, what string) (*mdns.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dns/rfc2136: %s: %w", what, err)
	}
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: exchangeTimeout, TsigSecret: map[string]string{p.keyName: p.secret}}
	conn, err := c.DialContext(ctx, p.server)
	if err != nil {
		if err := ctxErr(ctx); err != nil {
			return nil, fmt.Errorf("dns/rfc2136: %s: connecting to %s: %w", what, p.server, err)
		}
		return nil, fmt.Errorf("dns/rfc2136: %s: connecting to %s: %w", what, p.server, err)
	}
	defer conn.Close()
	// A deadline reaches the read through ExchangeWithConnContext; a cancel needs the close.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	switch {
	case err != nil && ctxErr(ctx) != nil:
		return nil, fmt.Errorf("dns/rfc2136: %s at %s: %w", what, p.server, ctxErr(ctx))
	case err != nil && r != nil && r.Rcode != mdns.RcodeSuccess:
		// An error reply to a bad key comes unsigned or signed with an empty MAC: the reply's
		// rcode says more than the failed verification.
		return nil, p.rcodeError(r, what)
	case err != nil && (errors.Is(err, mdns.ErrSig) || errors.Is(err, mdns.ErrTime) || errors.Is(err, mdns.ErrSecret)):
		return nil, fmt.Errorf("dns/rfc2136: %s at %s: the reply's TSIG signature does not verify with key %q: check the secret: %w", what, p.server, p.keyName, err)
	case err != nil:
		return nil, fmt.Errorf("dns/rfc2136: %s at %s: %w", what, p.server, err)
	}
	return r, nil
}

// ctxErr is ctx.Err(), or DeadlineExceeded once ctx's deadline has passed: a read that timed out at
// the deadline can return before ctx itself reports it.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// rcodeError explains a failed reply, with a hint for the causes a configuration can have.
func (p *Provider) rcodeError(r *mdns.Msg, what string) error {
	rcode := mdns.RcodeToString[r.Rcode]
	if rcode == "" {
		rcode = fmt.Sprintf("rcode %d", r.Rcode)
	}
	tsigErr := ""
	if t := r.IsTsig(); t != nil && t.Error != mdns.RcodeSuccess {
		tsigErr = mdns.RcodeToString[int(t.Error)]
	}
	var hint string
	switch {
	case tsigErr == "BADKEY":
		hint = fmt.Sprintf("the server does not accept TSIG key %q with algorithm %s for this zone: check key_name, algorithm and the zone's ACL (Knot answers BADKEY for a key its ACL does not list)", p.keyName, strings.TrimSuffix(p.alg, "."))
	case tsigErr == "BADSIG":
		hint = fmt.Sprintf("the server rejected the signature of TSIG key %q: check the secret (DROVER_TSIG_SECRET) and the algorithm", p.keyName)
	case tsigErr == "BADTIME":
		hint = "the server rejected the signature's time: check this machine's clock against the server's"
	case tsigErr != "":
		hint = fmt.Sprintf("the server rejected TSIG key %q (%s)", p.keyName, tsigErr)
	case r.Rcode == mdns.RcodeNotAuth:
		hint = fmt.Sprintf("the server is not authoritative for %s, or rejected TSIG key %q: check zone, key_name, algorithm and the secret", p.zone, p.keyName)
	case r.Rcode == mdns.RcodeRefused:
		hint = fmt.Sprintf("the server refused: check that it serves %s and that the zone's ACL allows updates with TSIG key %q", p.zone, p.keyName)
	case r.Rcode == mdns.RcodeNotZone:
		hint = fmt.Sprintf("the server says the name is not in zone %s", p.zone)
	case r.Rcode == mdns.RcodeNotImplemented || r.Rcode == mdns.RcodeFormatError:
		hint = "the server does not take RFC 2136 updates for this zone (is it a secondary, or a server without dynamic updates?)"
	case r.Rcode == mdns.RcodeServerFailure:
		hint = "the server failed to apply it: see its log"
	default:
		hint = "unexpected reply"
	}
	if tsigErr != "" {
		rcode += "/" + tsigErr
	}
	return fmt.Errorf("dns/rfc2136: %s at %s: %s: %s", what, p.server, rcode, hint)
}
