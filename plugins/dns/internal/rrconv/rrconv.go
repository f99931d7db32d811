// Package rrconv converts between dns.RecordSet and miekg/dns resource records for the providers
// that speak DNS (rfc2136, zonefile) and for verify, so that all of them check names and render
// record data the same way.
package rrconv

import (
	"fmt"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
)

// Types are the record types the DNS providers change.
var types = map[string]uint16{
	"A":     mdns.TypeA,
	"AAAA":  mdns.TypeAAAA,
	"CNAME": mdns.TypeCNAME,
	"TXT":   mdns.TypeTXT,
}

// Key is a checked name and type: the name fully qualified and lower case, the type upper case.
type Key struct {
	Name   string
	Type   string
	RRType uint16
}

// Check normalizes name and typ and checks that name is zone or below it and that typ is one the
// providers change (A, AAAA, CNAME, TXT). Errors start with component ("dns/rfc2136").
func Check(component, zone, name, typ string) (Key, error) {
	n := dns.Fqdn(strings.ToLower(name))
	if _, ok := mdns.IsDomainName(n); !ok || !plainName(n) {
		return Key{}, fmt.Errorf("%s: %q is not a domain name (letters, digits, '-' and '_' in labels, a leading \"*\" label for a wildcard)", component, name)
	}
	if !InZone(zone, n) {
		return Key{}, fmt.Errorf("%s: name %q is outside zone %q", component, name, zone)
	}
	t := strings.ToUpper(typ)
	rt, ok := types[t]
	if !ok {
		return Key{}, fmt.Errorf("%s: type %q (want A, AAAA, CNAME or TXT): %w", component, typ, dns.ErrUnsupportedType)
	}
	return Key{Name: n, Type: t, RRType: rt}, nil
}

// plainName reports whether a fully qualified name needs no escape in presentation format: its
// labels hold letters, digits, '-' and '_' only (the first may be "*"). A name with a quote, a
// space or a backslash is written escaped ("\\'") and read back as another string than the one
// asked for, so a set of it could never be found again.
func plainName(n string) bool {
	if n == "." {
		return true
	}
	for i, label := range strings.Split(strings.TrimSuffix(n, "."), ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// InZone reports whether the lower-case fully qualified name is the apex or below it.
func InZone(zone, name string) bool {
	return zone == "." || name == zone || strings.HasSuffix(name, "."+zone)
}

// RRs parses the set's values into records of its name, type and TTL, class IN. A value that does
// not parse as the type's record data is an error naming it.
func RRs(component string, k Key, ttl uint32, values []string) ([]mdns.RR, error) {
	rrs := make([]mdns.RR, 0, len(values))
	for _, v := range values {
		rr, err := mdns.NewRR(fmt.Sprintf("%s %d IN %s %s", k.Name, ttl, k.Type, v))
		if err != nil || rr == nil {
			return nil, fmt.Errorf("%s: %s %s value %q is not valid record data: %v", component, k.Name, k.Type, v, err)
		}
		if rr.Header().Rrtype != k.RRType {
			return nil, fmt.Errorf("%s: %s %s value %q is not valid record data", component, k.Name, k.Type, v)
		}
		rrs = append(rrs, rr)
	}
	return rrs, nil
}

// Value renders a record's data in presentation format, the way sets hold it: "192.0.2.1",
// "2001:db8::1", "target.lab.example." (lower case), "\"some text\"".
func Value(rr mdns.RR) string {
	v := strings.TrimPrefix(rr.String(), rr.Header().String())
	if c, ok := rr.(*mdns.CNAME); ok {
		v = strings.ToLower(c.Target)
	}
	return v
}

// Values renders records' data sorted and without duplicates.
func Values(rrs []mdns.RR) []string {
	vals := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		vals = append(vals, Value(rr))
	}
	slices.Sort(vals)
	return slices.Compact(vals)
}

// Canonical returns values re-rendered from their parsed form ("2001:DB8:0::1" becomes
// "2001:db8::1"), sorted and de-duplicated, so values from a fleet file compare equal to what a
// server returns.
func Canonical(component string, k Key, values []string) ([]string, error) {
	rrs, err := RRs(component, k, 0, values)
	if err != nil {
		return nil, err
	}
	return Values(rrs), nil
}

// Set makes the set of k from the records among rrs that have k's name and type; its TTL is the
// first such record's (a server serves one TTL per set).
func Set(k Key, rrs []mdns.RR) dns.RecordSet {
	s := dns.RecordSet{Name: k.Name, Type: k.Type, Values: []string{}}
	var match []mdns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == k.RRType && strings.EqualFold(h.Name, k.Name) {
			if len(match) == 0 {
				s.TTL = h.Ttl
			}
			match = append(match, rr)
		}
	}
	s.Values = Values(match)
	return s
}
