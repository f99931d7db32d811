// Package verify checks that a DNS change reached every authoritative server of a zone by asking
// each server directly (no recursion, no resolver cache in between), which is how the rollout knows
// a cutover is served everywhere before it drains blue.
package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/internal/rrconv"
)

// queryTimeout bounds one query to one server when ctx has a later deadline or none.
const queryTimeout = 5 * time.Second

// Nameservers returns the authoritative servers of zone as "address:53", sorted and without
// duplicates: the zone's NS records, then each NS name's A and AAAA records, all looked up through
// resolver ("192.0.2.53", or "host:port"; port 53 when none is given) with recursion desired. A
// zone without NS records, or whose NS names have no addresses, is an error; an NS name without
// addresses is skipped when others have some. It changes nothing and is safe for concurrent use.
func Nameservers(ctx context.Context, zone, resolver string) ([]string, error) {
	zone = dns.Fqdn(strings.ToLower(zone))
	resolver = withPort(resolver)
	r, err := exchange(ctx, resolver, zone, mdns.TypeNS, true)
	if err != nil {
		return nil, fmt.Errorf("dns/verify: NS of %s: %w", zone, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return nil, fmt.Errorf("dns/verify: NS of %s: %s answered %s (does it resolve or serve the zone?)", zone, resolver, rcodeName(r.Rcode))
	}
	var names []string
	for _, rr := range r.Answer {
		if ns, ok := rr.(*mdns.NS); ok && strings.EqualFold(ns.Hdr.Name, zone) {
			names = append(names, strings.ToLower(ns.Ns))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("dns/verify: %s has no NS records at %s", zone, resolver)
	}
	var servers []string
	var missing []string
	for _, name := range names {
		var addrs []string
		for _, typ := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			r, err := exchange(ctx, resolver, name, typ, true)
			if err != nil {
				return nil, fmt.Errorf("dns/verify: addresses of name server %s: %w", name, err)
			}
			for _, rr := range r.Answer {
				switch a := rr.(type) {
				case *mdns.A:
					addrs = append(addrs, net.JoinHostPort(a.A.String(), "53"))
				case *mdns.AAAA:
					addrs = append(addrs, net.JoinHostPort(a.AAAA.String(), "53"))
				}
			}
		}
		if len(addrs) == 0 {
			missing = append(missing, name)
		}
		servers = append(servers, addrs...)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("dns/verify: the name servers of %s (%s) have no A or AAAA records at %s", zone, strings.Join(missing, ", "), resolver)
	}
	slices.Sort(servers)
	return slices.Compact(servers), nil
}

// Served asks server ("host:port") for name and typ without recursion, over UDP with a retry over
// TCP when the answer is truncated, and returns the set it serves: its TTL and values in the form
// dns.RecordSet holds them (sorted; empty for NXDOMAIN or no records of the type). An answer that
// is not authoritative (the server does not serve the zone), or any rcode besides NOERROR and
// NXDOMAIN, is an error naming the server. It changes nothing and is safe for concurrent use.
func Served(ctx context.Context, server, name, typ string) (dns.RecordSet, error) {
	k, err := key(name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	set, err := served(ctx, withPort(server), k)
	if err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/verify: asking for %s %s: %w", k.Name, k.Type, err)
	}
	return set, nil
}

// served asks server for k's set. Its errors start with the server's address.
func served(ctx context.Context, server string, k rrconv.Key) (dns.RecordSet, error) {
	r, err := exchange(ctx, server, k.Name, k.RRType, false)
	if err != nil {
		return dns.RecordSet{}, err
	}
	if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError {
		return dns.RecordSet{}, fmt.Errorf("%s answered %s", server, rcodeName(r.Rcode))
	}
	if !r.Authoritative {
		return dns.RecordSet{}, fmt.Errorf("%s answered without authority (does it serve the zone?)", server)
	}
	return rrconv.Set(k, r.Answer), nil
}

// WaitServed asks every server for want's name and type, again every interval (one second when
// zero), until all of them answer with exactly want's values in the same round (the TTL is not
// compared; an empty want means NXDOMAIN or no records of the type). progress, when not nil, is
// called for each server after each round, in the order of servers, with whether it serves want
// and the values it served (nil when it did not answer). When ctx ends first, the error wraps
// ctx's error and names each server that does not serve want yet, with what it serves or why it
// did not answer.
//
// Servers are asked concurrently, without recursion, over UDP with TCP on truncation. It changes
// nothing and is safe for concurrent use.
func WaitServed(ctx context.Context, servers []string, want dns.RecordSet, interval time.Duration, progress func(server string, ok bool, got []string)) error {
	if len(servers) == 0 {
		return errors.New("dns/verify: no servers to check")
	}
	if interval <= 0 {
		interval = time.Second
	}
	k, err := key(want.Name, want.Type)
	if err != nil {
		return err
	}
	vals, err := rrconv.Canonical("dns/verify", k, want.Values)
	if err != nil {
		return err
	}
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = withPort(s)
	}
	type answer struct {
		set dns.RecordSet
		err error
	}
	// last is each server's latest state for the final error: an answer, or why there was none.
	// A query cut short by ctx's end says nothing about the server and does not replace it.
	last := make([]string, len(addrs))
	for i := range last {
		last[i] = fmt.Sprintf("%s did not answer yet", servers[i])
	}
	for {
		answers := make([]answer, len(addrs))
		var wg sync.WaitGroup
		for i, addr := range addrs {
			wg.Go(func() {
				set, err := served(ctx, addr, k)
				answers[i] = answer{set, err}
			})
		}
		wg.Wait()
		cut := false
		for i, a := range answers {
			ok := a.err == nil && slices.Equal(a.set.Values, vals)
			if progress != nil {
				var got []string
				if a.err == nil {
					got = a.set.Values
				}
				progress(servers[i], ok, got)
			}
			switch {
			case ok:
				last[i] = ""
			case a.err != nil && ended(ctx):
				cut = true
			case a.err != nil:
				last[i] = a.err.Error()
			default:
				last[i] = fmt.Sprintf("%s serves %s", servers[i], describe(a.set.Values))
			}
		}
		var notYet []string
		for _, l := range last {
			if l != "" {
				notYet = append(notYet, l)
			}
		}
		if len(notYet) == 0 && !cut {
			return nil
		}
		select {
		case <-ctx.Done():
			if len(notYet) == 0 {
				return fmt.Errorf("dns/verify: %s %s: every server served %s, but not in one round: %w",
					k.Name, k.Type, describe(vals), context.Cause(ctx))
			}
			return fmt.Errorf("dns/verify: %s %s is not yet %s at %d of %d servers: %s: %w",
				k.Name, k.Type, describe(vals), len(notYet), len(servers), strings.Join(notYet, "; "), context.Cause(ctx))
		case <-time.After(interval):
		}
	}
}

func describe(values []string) string {
	if len(values) == 0 {
		return "no records"
	}
	return "[" + strings.Join(values, " ") + "]"
}

// key checks a name and type for a query: any fully qualified name, the types the providers change.
func key(name, typ string) (rrconv.Key, error) {
	n := dns.Fqdn(strings.ToLower(name))
	// The root zone contains every name: only the type and syntax are checked.
	return rrconv.Check("dns/verify", ".", n, typ)
}

// exchange sends one query to server: over UDP, again over TCP when the answer is truncated. The
// error names the server and wraps ctx's error when ctx ended.
func exchange(ctx context.Context, server, name string, qtype uint16, recurse bool) (*mdns.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = recurse
	m.SetEdns0(1232, false)
	var r *mdns.Msg
	for _, network := range []string{"udp", "tcp"} {
		var err error
		r, err = exchangeOne(ctx, network, server, m)
		if err != nil {
			return nil, err
		}
		if !r.Truncated {
			break
		}
	}
	return r, nil
}

func exchangeOne(ctx context.Context, network, server string, m *mdns.Msg) (*mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: queryTimeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("%s over %s: %w", server, network, ctxOr(ctx, err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return nil, fmt.Errorf("%s over %s: %w", server, network, ctxOr(ctx, err))
	}
	return r, nil
}

// ended reports whether ctx has ended or its deadline has passed: a read timed out at the deadline
// can return before ctx's own timer fires, and such a query says nothing about the server.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// ctxOr returns ctx's error when it has ended (or its deadline has passed: a read that timed out at
// the deadline can return before ctx reports it), else err.
func ctxOr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	if ended(ctx) {
		return context.DeadlineExceeded
	}
	return err
}

func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), "53")
}

func rcodeName(rcode int) string {
	if s, ok := mdns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rcode)
}
