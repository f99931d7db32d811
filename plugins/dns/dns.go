// Package dns defines the record-set view of a DNS zone that the dns cutover needs: read the set a
// name has, and replace it whole.
//
// A Provider talks to one zone at the place that accepts changes (the primary of RFC 2136, a SaaS
// API, a zone file). Checking that a change has reached every authoritative server is not its job:
// the rollout asks each server directly (package dns/verify). Every implementation passes the
// contract suite in package dnstest.
package dns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// ErrConflict means a ReplaceSet's precondition failed: the set was not what the caller said it was
// (someone else changed it). Nothing was changed.
var ErrConflict = errors.New("dns: record set changed concurrently")

// ErrUnsupportedType means the provider does not handle the record type.
var ErrUnsupportedType = errors.New("dns: unsupported record type")

// RecordSet is every record of one name and type: what a cutover sets and restores as one unit.
type RecordSet struct {
	// Name is fully qualified and lower case, ending in a dot: "www.lab.example.".
	Name string `json:"name"`
	// Type is the record type in upper case: "A", "AAAA", "CNAME", "TXT".
	Type string `json:"type"`
	// TTL is in seconds. A set read from a provider reports the TTL the provider serves.
	TTL uint32 `json:"ttl"`
	// Values are the record data in presentation format ("192.0.2.1"), sorted. An empty set (no
	// values) means the name has no records of this type.
	Values []string `json:"values"`
}

// Empty reports whether the set has no records.
func (s RecordSet) Empty() bool { return len(s.Values) == 0 }

// Normalize returns the set with a lower-case fully qualified name, an upper-case type and sorted,
// de-duplicated values, the form providers return and Equal compares.
func (s RecordSet) Normalize() RecordSet {
	s.Name = Fqdn(strings.ToLower(s.Name))
	s.Type = strings.ToUpper(s.Type)
	vals := slices.Clone(s.Values)
	slices.Sort(vals)
	s.Values = slices.Compact(vals)
	return s
}

// Equal reports whether two sets hold the same records with the same TTL.
func (s RecordSet) Equal(o RecordSet) bool {
	a, b := s.Normalize(), o.Normalize()
	return a.Name == b.Name && a.Type == b.Type && a.TTL == b.TTL && slices.Equal(a.Values, b.Values)
}

// SameValues reports whether two sets hold the same records, whatever their TTLs.
func (s RecordSet) SameValues(o RecordSet) bool {
	a, b := s.Normalize(), o.Normalize()
	return a.Name == b.Name && a.Type == b.Type && slices.Equal(a.Values, b.Values)
}

func (s RecordSet) String() string {
	return fmt.Sprintf("%s %d %s [%s]", s.Name, s.TTL, s.Type, strings.Join(s.Values, " "))
}

// Fqdn adds the final dot when it is missing.
func Fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// Provider reads and replaces record sets in one zone.
//
// Implementations are safe for concurrent use. Every method honours ctx: a context done before the
// call has any effect makes it fail with an error wrapping ctx.Err() and change nothing. Names
// outside the provider's zone are refused with an error naming the zone.
type Provider interface {
	// Zone is the zone's apex, fully qualified: "lab.example.".
	Zone() string

	// Set returns the record set of name and typ as the provider serves it now. A name with no
	// records of that type returns an empty set (no values) and no error.
	Set(ctx context.Context, name, typ string) (RecordSet, error)

	// ReplaceSet makes the set of want.Name and want.Type exactly want (its TTL and values); an
	// empty want removes every record of that name and type. It is idempotent: replacing a set
	// with what is already served succeeds and changes nothing.
	//
	// When prev is not nil it is a precondition: if the set served now differs from *prev (values;
	// TTL too where the provider can tell), nothing is changed and the error wraps ErrConflict.
	// Providers apply the change as one atomic update where the platform allows (an RFC 2136
	// update with prerequisites, one Route 53 change batch, one zone file rename); otherwise (the
	// Cloudflare API) a failure part way leaves a mix of old and new records of that one set, which
	// Set shows and a retry of the same ReplaceSet repairs.
	ReplaceSet(ctx context.Context, want RecordSet, prev *RecordSet) error
}

// Factory makes dns providers of one type; plugins/all lists one per type.
type Factory = config.Factory[Provider]

// Verified is implemented by providers whose changes are verified at servers the block names rather
// than at the zone's NS records (a primary on this machine, a hidden master). The rollout waits until
// each of them serves a change.
type Verified interface {
	// VerifyAt returns the servers (host:port) to verify changes at; empty means the zone's NS
	// records, looked up through this machine's resolver.
	VerifyAt() []string
}
