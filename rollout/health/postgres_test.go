package health_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
)

// The postgres check passes against a real PostgreSQL in the db role's boot test
// (cmd/drover TestE2EBuild); here it must refuse what only looks like a database port.
func TestPostgresRefusesPortsThatAreNotPostgres(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	httpPort := server(t, false, &ok)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closing := netip.MustParseAddrPort(ln.Addr().String())

	for _, tc := range []struct {
		name   string
		target netip.AddrPort
		want   string
	}{
		{"an HTTP server, which waits for a request line", httpPort, "no answer to SSLRequest"},
		{"a port that closes every connection", closing, "no answer to SSLRequest"},
	} {
		c := build(t, fleet.HealthCheck{Type: "postgres", Port: int(tc.target.Port()), Timeout: 2 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		err := c.Prober.Probe(ctx, tc.target)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
