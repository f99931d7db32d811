package digitalocean

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/digitalocean/godo"
	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/internal/rrconv"
	"github.com/drover-dev/drover/plugins/internal/doapi"
)

// record is the part of a DigitalOcean record drover looks at.
type record struct {
	id    int
	value string // presentation form, as sets hold it
	ttl   uint32
}

// toSet makes the set of k from its records: their values, and the lowest TTL.
func toSet(k rrconv.Key, recs []record) dns.RecordSet {
	s := dns.RecordSet{Name: k.Name, Type: k.Type, Values: []string{}}
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

// canonical returns s with k's name and type and its values in the form Set returns them, so that
// a fleet's "2001:DB8::1" or "a" "b" (two TXT strings, which DigitalOcean keeps as one) compare
// equal to what the API holds.
func canonical(zone string, k rrconv.Key, s dns.RecordSet) (dns.RecordSet, error) {
	s.Name, s.Type = k.Name, k.Type
	rrs, err := rrconv.RRs(component, k, 0, s.Values)
	if err != nil {
		return s, err
	}
	vals := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		vals = append(vals, fromData(zone, k.Type, data(rr)))
	}
	s.Values = vals
	return s.Normalize(), nil
}

// data is a parsed value as the API's data field takes it: an address, a CNAME target fully
// qualified with its final dot (the API requires it), a TXT record's text unquoted (its strings
// joined: DigitalOcean splits long texts itself).
func data(rr mdns.RR) string {
	switch rr := rr.(type) {
	case *mdns.A:
		return rr.A.String()
	case *mdns.AAAA:
		return rr.AAAA.String()
	case *mdns.CNAME:
		return strings.ToLower(rr.Target)
	case *mdns.TXT:
		var b strings.Builder
		for _, t := range rr.Txt {
			b.WriteString(txtUnescape(t))
		}
		return b.String()
	}
	return rrconv.Value(rr)
}

// fromData is the presentation form of a record's data field. The API returns a CNAME target
// fully qualified without its final dot, or "@" for the domain's apex; a TXT record's text
// unquoted.
func fromData(zone, typ, d string) string {
	switch typ {
	case "A", "AAAA":
		if a, err := netip.ParseAddr(d); err == nil {
			return a.String()
		}
	case "CNAME":
		if d == "@" {
			return zone
		}
		return dns.Fqdn(strings.ToLower(d))
	case "TXT":
		return `"` + txtEscape(d) + `"`
	}
	return d
}

// txtUnescape turns a TXT string as miekg/dns holds it (presentation escapes: \" \\ \DDD) into
// its bytes.
func txtUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			b.WriteByte((s[i+1]-'0')*100 + (s[i+2]-'0')*10 + (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// txtEscape is text in a quoted TXT string's presentation form: quotes and backslashes escaped,
// bytes outside printable ASCII as \DDD.
func txtEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// toData is a canonical value as the API's data field takes it.
func toData(k rrconv.Key, value string) (string, error) {
	rrs, err := rrconv.RRs(component, k, 0, []string{value})
	if err != nil {
		return "", err
	}
	return data(rrs[0]), nil
}

// plan is the writes that turn the records of a set into the wanted ones, in the order apply
// sends them: updates, creates, deletes.
type plan struct {
	updates []write // a kept record's new TTL, or a record no longer wanted given a missing value
	creates []write
	deletes []int
}

type write struct {
	id    int // updates only
	value string
	ttl   uint32
}

func (pl plan) empty() bool { return len(pl.updates)+len(pl.creates)+len(pl.deletes) == 0 }

func (p *Provider) plan(k rrconv.Key, recs []record, want dns.RecordSet) plan {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(a.id, b.id) })
	wanted := map[string]bool{}
	for _, v := range want.Values {
		wanted[v] = true
	}
	var pl plan
	kept := map[string]bool{}
	var spare []record
	for _, r := range recs {
		if wanted[r.value] && !kept[r.value] {
			kept[r.value] = true
			if r.ttl != want.TTL {
				pl.updates = append(pl.updates, write{id: r.id, value: r.value, ttl: want.TTL})
			}
			continue
		}
		spare = append(spare, r)
	}
	for _, v := range want.Values {
		if kept[v] {
			continue
		}
		if len(spare) > 0 {
			pl.updates = append(pl.updates, write{id: spare[0].id, value: v, ttl: want.TTL})
			spare = spare[1:]
			continue
		}
		pl.creates = append(pl.creates, write{value: v, ttl: want.TTL})
	}
	for _, r := range spare {
		pl.deletes = append(pl.deletes, r.id)
	}
	return pl
}

// apply sends the plan's writes one by one and stops at the first that fails. A DELETE of a
// record already gone counts as done.
func (p *Provider) apply(ctx context.Context, k rrconv.Key, pl plan) error {
	name := p.relative(k.Name)
	body := func(w write) (*godo.DomainRecordEditRequest, error) {
		d, err := toData(k, w.value)
		if err != nil {
			return nil, err
		}
		return &godo.DomainRecordEditRequest{Type: k.Type, Name: name, Data: d, TTL: int(w.ttl)}, nil
	}
	for _, w := range pl.updates {
		req, err := body(w)
		if err != nil {
			return err
		}
		cctx, r := doapi.Track(ctx)
		if _, _, err := p.domains.EditRecord(cctx, p.domain, w.id, req); err != nil {
			return r.Err(fmt.Sprintf("setting record %d of %s %s to %s (TTL %d)", w.id, k.Name, k.Type, w.value, w.ttl), err)
		}
	}
	for _, w := range pl.creates {
		req, err := body(w)
		if err != nil {
			return err
		}
		cctx, r := doapi.Track(ctx)
		if _, _, err := p.domains.CreateRecord(cctx, p.domain, req); err != nil {
			return r.Err(fmt.Sprintf("creating %s %s %s", k.Name, k.Type, w.value), err)
		}
	}
	for _, id := range pl.deletes {
		cctx, r := doapi.Track(ctx)
		if _, err := p.domains.DeleteRecord(cctx, p.domain, id); err != nil {
			if err := r.Err(fmt.Sprintf("deleting record %d of %s %s", id, k.Name, k.Type), err); !gone(err) {
				return err
			}
		}
	}
	return nil
}

// gone reports whether err is the API's 404 for a record: someone else deleted it since the read.
func gone(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
