package dnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/drover-dev/drover/plugins/dns"
)

// SharedZone is a provider over a real zone that other runs and other records share, such as a
// hosted zone a live test borrows.
type SharedZone struct {
	// Provider is the provider the subtests use.
	Provider dns.Provider
	// Reopen makes a new provider over the same zone, as a new process would (Fixture.Reopen).
	Reopen func(ctx context.Context) (dns.Provider, error)
	// Outside changes a set behind the provider's back (Fixture.Outside).
	Outside func(t *testing.T, set dns.RecordSet)
	// Clean deletes every record at or under PREFIX.ZONE. It runs as the subtest's cleanup, when
	// t.Context() is already canceled.
	Clean func(t *testing.T, prefix string)
}

// RunShared runs the contract suite on z: each subtest works under a prefix of its own,
// t<N>-<random> (random per call, so that runs at the same time do not meet), and z.Clean removes
// what it left there when it ends.
func RunShared(t *testing.T, z SharedZone, opts Options) {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	var n atomic.Int32
	Run(t, func(t *testing.T) Fixture {
		prefix := fmt.Sprintf("t%d-%s", n.Add(1), run)
		t.Cleanup(func() { z.Clean(t, prefix) })
		return Fixture{
			Provider: z.Provider,
			Prefix:   prefix,
			Reopen: func(t *testing.T) dns.Provider {
				p, err := z.Reopen(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return p
			},
			Outside: z.Outside,
		}
	}, opts)
}
