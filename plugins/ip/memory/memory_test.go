package memory_test

import (
	"net/netip"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	computemem "github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/iptest"
	"github.com/drover-dev/drover/plugins/ip/memory"
)

var addrs = []netip.Addr{netip.MustParseAddr("127.0.0.100"), netip.MustParseAddr("127.0.0.101")}

// TestContract runs the suite with the fake backed by compute/memory, so
// unknown and terminated instances are refused and let go.
func TestContract(t *testing.T) {
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		lab := computemem.New()
		var ids []string
		for _, tok := range []string{"a", "b"} {
			in, err := lab.Launch(t.Context(), compute.Spec{Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, in.ID)
		}
		p := memory.New(lab)
		return iptest.Fixture{
			Provider:  p,
			Addrs:     addrs,
			Instances: ids,
			Unknown:   "mem-404",
			Reopen:    func(*testing.T) ip.Provider { return p },
			Kill: func(t *testing.T, id string) {
				if err := lab.Terminate(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			},
		}
	}, iptest.Options{Parallel: true})
}

// TestContractStandalone runs the suite with the fake on its own, accepting
// any instance ID.
func TestContractStandalone(t *testing.T) {
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		return iptest.Fixture{Provider: memory.New(nil), Addrs: addrs, Instances: []string{"i-1", "i-2"}}
	}, iptest.Options{Parallel: true})
}
