package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

func probeOnce(t *testing.T, p Prober, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return p.Probe(ctx, netip.MustParseAddrPort(addr))
}

// The dns check against a real Knot, over TCP.
func TestDNSCheck(t *testing.T) {
	srv := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	for _, c := range []struct {
		query, want string // want: "" for healthy, else a part of the error
	}{
		{"ns1.lab.example", ""},
		{"www.lab.example.", ""},
		{"nope.lab.example.", "NXDOMAIN"},
		{"www.other.example.", "REFUSED"}, // a zone the server does not serve
	} {
		p, err := newDNS(fleet.HealthCheck{Type: "dns", Port: 53, Query: c.query}, &net.Dialer{})
		if err != nil {
			t.Fatal(err)
		}
		err = probeOnce(t, p, srv.Addr)
		if (c.want == "" && err != nil) || (c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want))) {
			t.Errorf("query %s: %v, want %q", c.query, err, c.want)
		}
	}
	p, _ := newDNS(fleet.HealthCheck{Type: "dns", Port: 53, Query: "www.lab.example"}, &net.Dialer{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accepts and hangs up: a port that is open but no DNS server
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := probeOnce(t, p, l.Addr().String()); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("a port that hangs up: %v", err)
	}
	if _, err := newDNS(fleet.HealthCheck{Type: "dns", Query: "not a name..x"}, &net.Dialer{}); err == nil {
		t.Error("a query that is not a domain name was accepted")
	}
}

// The vault check against a real Vault dev server: healthy when unsealed, failing once sealed.
func TestVaultCheck(t *testing.T) {
	srv := vaulttest.Start(t)
	p, err := newVault(fleet.HealthCheck{Type: "vault", Port: 8200}, &net.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.Addr, "http://")
	if err := probeOnce(t, p, addr); err != nil {
		t.Fatalf("an unsealed dev server: %v", err)
	}
	c, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(srv.RootToken)
	if err := c.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	if err := probeOnce(t, p, addr); err == nil || !strings.Contains(err.Error(), "is sealed") {
		t.Errorf("a sealed server: %v, want it named sealed", err)
	}

	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer other.Close()
	if err := probeOnce(t, p, strings.TrimPrefix(other.URL, "http://")); err == nil || !strings.Contains(err.Error(), "not Vault's health answer") {
		t.Errorf("a server that is not Vault: %v", err)
	}
}
