package digitalocean_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/digitalocean"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
)

// TestLive runs the contract suite against a real DigitalOcean domain, under names
// t<N>-<random>.<domain> that it deletes afterwards. The token (DIGITALOCEAN_TOKEN or
// DIGITALOCEAN_TOKEN_FILE) needs read and write access to the domain's records.
func TestLive(t *testing.T) {
	zone := os.Getenv("DROVER_TEST_DO_ZONE")
	cfg, err := digitalocean.NewDefaultConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token == "" || zone == "" {
		t.Skip("set DIGITALOCEAN_TOKEN and DROVER_TEST_DO_ZONE to run against a real domain")
	}
	cfg.Zone = zone
	runLive(t, cfg)
}

// The live test's harness (its outside edits and clean-up), run against the fake.
func TestLiveHarness(t *testing.T) {
	s := newFake(t)
	runLive(t, newConfig(s))
	for _, r := range s.Records(domain) {
		if r.Type != "NS" {
			t.Errorf("record left after the clean-up: %+v", r)
		}
	}
}

func runLive(t *testing.T, cfg *digitalocean.Config) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := digitalocean.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := plainClient(t, cfg)
	zone := strings.TrimSuffix(p.Zone(), ".")
	dnstest.RunShared(t, dnstest.SharedZone{
		Provider: p,
		Reopen:   func(ctx context.Context) (dns.Provider, error) { return digitalocean.New(ctx, cfg) },
		Outside:  func(t *testing.T, set dns.RecordSet) { liveOutside(t, client, zone, set) },
		Clean:    func(t *testing.T, prefix string) { deleteUnder(t, client, zone, prefix) },
	}, dnstest.Options{Timeout: 2 * time.Minute})
}

// bearer signs the plain client's requests.
type bearer string

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(req)
}

// plainClient is godo on its own, as another tool would use it.
func plainClient(t *testing.T, cfg *digitalocean.Config) *godo.Client {
	opts := []godo.ClientOpt{}
	if cfg.APIURL != "" {
		opts = append(opts, godo.SetBaseURL(cfg.APIURL))
	}
	c, err := godo.New(&http.Client{Transport: bearer(cfg.Token), Timeout: 30 * time.Second}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allRecords lists every record of the domain.
func allRecords(ctx context.Context, t *testing.T, c *godo.Client, zone string) []godo.DomainRecord {
	var out []godo.DomainRecord
	for page := 1; ; page++ {
		recs, res, err := c.Domains.Records(ctx, zone, &godo.ListOptions{Page: page, PerPage: 200})
		if err != nil {
			t.Fatalf("listing records: %v", err)
		}
		out = append(out, recs...)
		if res.Links == nil || res.Links.IsLastPage() {
			return out
		}
	}
}

// liveOutside replaces a set with the plain API, as another tool would.
func liveOutside(t *testing.T, c *godo.Client, zone string, set dns.RecordSet) {
	ctx := t.Context()
	name := strings.TrimSuffix(strings.TrimSuffix(set.Name, "."), "."+zone)
	for _, r := range allRecords(ctx, t, c, zone) {
		if r.Name == name && r.Type == set.Type {
			if _, err := c.Domains.DeleteRecord(ctx, zone, r.ID); err != nil {
				t.Fatalf("deleting %d: %v", r.ID, err)
			}
		}
	}
	for _, v := range set.Values {
		req := &godo.DomainRecordEditRequest{Type: set.Type, Name: name, Data: v, TTL: int(set.TTL)}
		if _, _, err := c.Domains.CreateRecord(ctx, zone, req); err != nil {
			t.Fatalf("creating %s %s %s: %v", set.Name, set.Type, v, err)
		}
	}
}

// deleteUnder deletes every record named prefix or below it. It runs as a cleanup, when
// t.Context() is already canceled.
func deleteUnder(t *testing.T, c *godo.Client, zone, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range allRecords(ctx, t, c, zone) {
		if r.Name == prefix || strings.HasSuffix(r.Name, "."+prefix) {
			if _, err := c.Domains.DeleteRecord(ctx, zone, r.ID); err != nil {
				t.Errorf("cleaning up %s %s: %v", r.Name, r.Type, err)
			}
		}
	}
}
