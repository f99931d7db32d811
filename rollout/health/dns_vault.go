package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/fleet"
)

// newDNS makes a dns check: the server answers the query's name (type A) authoritatively with at
// least one record. It asks over TCP, which every DNS server serves and which host forwards (the
// lab's, a load balancer's) carry; a server that is up but has not loaded its zone answers
// REFUSED or SERVFAIL and fails the check.
func newDNS(hc fleet.HealthCheck, d Dialer) (Prober, error) {
	name := mdns.Fqdn(hc.Query)
	if _, ok := mdns.IsDomainName(name); !ok || hc.Query == "" {
		return nil, fmt.Errorf("health: dns check: query %q is not a domain name", hc.Query)
	}
	return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
		c, err := dialTCP(ctx, d, target)
		if err != nil {
			return err
		}
		defer c.Close()
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		conn := &mdns.Conn{Conn: c}
		if err := conn.WriteMsg(m); err != nil {
			return fmt.Errorf("dns query %s A: %w", name, err)
		}
		r, err := conn.ReadMsg()
		if err != nil {
			return fmt.Errorf("dns query %s A: no answer: %w", name, err)
		}
		switch {
		case r.Id != m.Id:
			return fmt.Errorf("dns query %s A: the answer is for another query", name)
		case r.Rcode != mdns.RcodeSuccess:
			return fmt.Errorf("dns query %s A: %s", name, mdns.RcodeToString[r.Rcode])
		case !r.Authoritative:
			return fmt.Errorf("dns query %s A: the answer is not authoritative (the zone is not loaded?)", name)
		case len(r.Answer) == 0:
			return fmt.Errorf("dns query %s A: no records", name)
		}
		return nil
	}), nil
}

// newVault makes a vault check: GET /v1/sys/health, which answers without a token. Healthy is
// initialized and unsealed: active (200), standby (429) or performance standby (473); sealed (503),
// not initialized (501) and in recovery mode (503) fail, with Vault's own words for it. With scheme
// "https" it speaks TLS, verified against ca_file (or the system's CAs) unless tls_skip_verify.
func newVault(hc fleet.HealthCheck, d Dialer) (Prober, error) {
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil}
	scheme := "http"
	if hc.TLS() {
		cfg, err := tlsConfig(hc)
		if err != nil {
			return nil, err
		}
		scheme, tr.TLSClientConfig = "https", cfg
	}
	client := &http.Client{Transport: tr}
	return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
		url := fmt.Sprintf("%s://%s/v1/sys/health", scheme, target)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "drover-health")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var h struct {
			Initialized *bool `json:"initialized"`
			Sealed      bool  `json:"sealed"`
			Standby     bool  `json:"standby"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(body, &h) != nil || h.Initialized == nil {
			return fmt.Errorf("GET %s: %s, not Vault's health answer", url, resp.Status)
		}
		switch {
		case !*h.Initialized:
			return fmt.Errorf("vault at %s is not initialized", target)
		case h.Sealed:
			return fmt.Errorf("vault at %s is sealed", target)
		}
		switch resp.StatusCode {
		case http.StatusOK, http.StatusTooManyRequests, 473:
			return nil
		}
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}), nil
}
