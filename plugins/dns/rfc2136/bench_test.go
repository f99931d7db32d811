package rfc2136_test

import (
	"testing"

	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
)

// BenchmarkSetToServed measures a cutover's DNS step against a real knotd: from calling ReplaceSet
// (with the previous set as precondition, as the rollout does) to verify.WaitServed seeing the new
// set at every authoritative server (here the one knotd), polling every 5 ms. Each iteration flips
// the set between two values, so each is a real change. ms/op is the whole step; replace-ms/op the
// ReplaceSet part of it (see dnstest.BenchSetToServed).
func BenchmarkSetToServed(b *testing.B) {
	srv := knot.Start(b, "lab.example.") // stopped by b.Cleanup
	p, err := rfc2136.New(config(srv))
	if err != nil {
		b.Fatal(err)
	}
	dnstest.BenchSetToServed(b, p, []string{srv.Addr}, "www.lab.example.")
}
