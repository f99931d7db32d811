package rfc2136_test

import (
	"context"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
	"github.com/drover-dev/drover/plugins/dns/verify"
)

// BenchmarkSetToServed measures a cutover's DNS step against a real knotd: from calling ReplaceSet
// (with the previous set as precondition, as the rollout does) to verify.WaitServed seeing the new
// set at every authoritative server (here the one knotd), polling every 5 ms. Each iteration flips
// the set between two values, so each is a real change. ms/op is the whole step; replace-ms/op the
// ReplaceSet part of it.
func BenchmarkSetToServed(b *testing.B) {
	srv := knot.Start(b, "lab.example.") // stopped by b.Cleanup
	p, err := rfc2136.New(config(srv))
	if err != nil {
		b.Fatal(err)
	}
	const interval = 5 * time.Millisecond
	sets := [2]dns.RecordSet{
		{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}},
		{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"198.51.100.1"}},
	}
	servers := []string{srv.Addr}
	step := func(want dns.RecordSet, prev *dns.RecordSet) (replace, total time.Duration) {
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := p.ReplaceSet(ctx, want, prev); err != nil {
			b.Fatal(err)
		}
		replace = time.Since(start)
		if err := verify.WaitServed(ctx, servers, want, interval, nil); err != nil {
			b.Fatal(err)
		}
		return replace, time.Since(start)
	}
	step(sets[0], nil) // the starting set, outside the measurement
	var replace, total time.Duration
	i := 0
	for b.Loop() {
		r, t := step(sets[(i+1)%2], &sets[i%2])
		replace += r
		total += t
		i++
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(i), "ms/op")
	b.ReportMetric(float64(replace.Microseconds())/1e3/float64(i), "replace-ms/op")
}
