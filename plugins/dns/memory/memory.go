// Package memory is an in-memory dns.Provider: the fake for rollout tests and the reference for
// the contract suite.
package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/drover-dev/drover/plugins/dns"
)

var _ dns.Provider = (*Zone)(nil)

// Zone is one zone held in memory. It is safe for concurrent use; its state lives as long as the
// value, so "reopening" it is using it again.
type Zone struct {
	apex string
	mu   sync.Mutex
	sets map[key]dns.RecordSet
	// changes counts successful ReplaceSet calls that changed something, for tests.
	changes int
}

type key struct{ name, typ string }

// New returns an empty zone with the given apex ("lab.example.").
func New(apex string) *Zone {
	return &Zone{apex: dns.Fqdn(strings.ToLower(apex)), sets: map[key]dns.RecordSet{}}
}

// Zone returns the apex.
func (z *Zone) Zone() string { return z.apex }

// Changes returns how many ReplaceSet calls changed the zone.
func (z *Zone) Changes() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.changes
}

func (z *Zone) check(name, typ string) (key, error) {
	n := dns.Fqdn(strings.ToLower(name))
	if n != z.apex && !strings.HasSuffix(n, "."+z.apex) {
		return key{}, fmt.Errorf("dns/memory: name %q is outside zone %q", name, z.apex)
	}
	switch t := strings.ToUpper(typ); t {
	case "A", "AAAA", "CNAME", "TXT":
		return key{n, t}, nil
	default:
		return key{}, fmt.Errorf("dns/memory: type %q (want A, AAAA, CNAME or TXT): %w", typ, dns.ErrUnsupportedType)
	}
}

// Set returns the set of name and typ.
func (z *Zone) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := ctx.Err(); err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/memory: %w", err)
	}
	k, err := z.check(name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if s, ok := z.sets[k]; ok {
		return s.Normalize(), nil
	}
	return dns.RecordSet{Name: k.name, Type: k.typ}, nil
}

// ReplaceSet replaces the set atomically, checking prev under the same lock.
func (z *Zone) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns/memory: %w", err)
	}
	k, err := z.check(want.Name, want.Type)
	if err != nil {
		return err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	cur, ok := z.sets[k]
	if prev != nil {
		if prev.Empty() != !ok || (ok && !cur.Equal(*prev)) {
			return fmt.Errorf("dns/memory: %s %s is %v, not %v: %w", k.name, k.typ, cur, *prev, dns.ErrConflict)
		}
	}
	want = want.Normalize()
	switch {
	case want.Empty() && ok:
		delete(z.sets, k)
		z.changes++
	case !want.Empty() && !(ok && cur.Equal(want)):
		z.sets[k] = want
		z.changes++
	}
	return nil
}
