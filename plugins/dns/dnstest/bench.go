package dnstest

import (
	"context"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/verify"
)

// BenchSetToServed measures a cutover's DNS step with p: from calling ReplaceSet (with the
// previous set as precondition, as the rollout does) to verify.WaitServed seeing the new set at
// every server of servers (host:port), polling every 5 ms. Each iteration flips the A set of name
// between two values, so each is a real change; the first set is written before the measurement.
// It reports ms/op, the whole step, and replace-ms/op, the ReplaceSet part of it.
//
//	func BenchmarkSetToServed(b *testing.B) {
//		srv := knot.Start(b, "lab.example.")
//		p, err := rfc2136.New(...)
//		...
//		dnstest.BenchSetToServed(b, p, []string{srv.Addr}, "www.lab.example.")
//	}
func BenchSetToServed(b *testing.B, p dns.Provider, servers []string, name string) {
	b.Helper()
	const interval = 5 * time.Millisecond
	sets := [2]dns.RecordSet{
		{Name: name, Type: "A", TTL: 60, Values: []string{"192.0.2.1"}},
		{Name: name, Type: "A", TTL: 60, Values: []string{"198.51.100.1"}},
	}
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
