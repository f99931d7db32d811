package memory_test

import (
	"testing"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/memory"
)

func TestContract(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		z := memory.New("lab.example.")
		return dnstest.Fixture{
			Provider: z,
			Reopen:   func(*testing.T) dns.Provider { return z },
			Outside: func(t *testing.T, set dns.RecordSet) {
				if err := z.ReplaceSet(t.Context(), set, nil); err != nil {
					t.Fatal(err)
				}
			},
		}
	}, dnstest.Options{Parallel: true})
}

func TestChangesCountsOnlyChanges(t *testing.T) {
	z := memory.New("lab.example")
	w := dns.RecordSet{Name: "www.lab.example", Type: "a", TTL: 60, Values: []string{"192.0.2.1"}}
	for range 3 {
		if err := z.ReplaceSet(t.Context(), w, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := z.Changes(); n != 1 {
		t.Fatalf("Changes() = %d after three identical replaces, want 1", n)
	}
}
