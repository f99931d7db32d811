package zonefile_test

import (
	"testing"

	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/dnstest/nsd"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
)

// BenchmarkSetToServed measures a cutover's DNS step against a real NSD: from calling ReplaceSet
// (with the previous set as precondition, as the rollout does; it rewrites the zone file and runs
// nsd-control reload) to verify.WaitServed seeing the new set at every authoritative server (here
// the one nsd), polling every 5 ms. Each iteration flips the set between two values, so each is a
// real change. ms/op is the whole step; replace-ms/op the ReplaceSet part of it (see
// dnstest.BenchSetToServed).
func BenchmarkSetToServed(b *testing.B) {
	srv := nsd.Start(b, "lab.example.") // stopped by b.Cleanup
	p, err := zonefile.New(&zonefile.Config{Zone: srv.Zone, Path: srv.ZoneFile, Reload: srv.ReloadCommand()}, "")
	if err != nil {
		b.Fatal(err)
	}
	dnstest.BenchSetToServed(b, p, []string{srv.Addr}, "www.lab.example.")
}
