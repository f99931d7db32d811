package cloudflare_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	cfdns "github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
)

// TestLive runs the contract suite against a real Cloudflare zone, under names
// t<N>-<random>.<zone> that it deletes afterwards. The token (CLOUDFLARE_API_TOKEN or
// CLOUDFLARE_API_TOKEN_FILE) needs Zone:Read and DNS:Edit on the zone.
func TestLive(t *testing.T) {
	zone := os.Getenv("DROVER_TEST_CF_ZONE")
	cfg, err := cloudflare.NewDefaultConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token == "" || zone == "" {
		t.Skip("set CLOUDFLARE_API_TOKEN and DROVER_TEST_CF_ZONE to run against a real zone")
	}
	cfg.Zone = zone
	cfg.APIURL = os.Getenv("CLOUDFLARE_BASE_URL")
	runLive(t, cfg, skipTTL())
}

// The live test's harness (its outside edits and clean-up), run against the fake.
func TestLiveHarness(t *testing.T) {
	s := newFake(t)
	runLive(t, newConfig(s), nil)
	if recs := s.Records(zoneName); len(recs) != 0 {
		t.Fatalf("records left after the clean-up: %v", recs)
	}
}

func runLive(t *testing.T, cfg *cloudflare.Config, skip []string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := cloudflare.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := []option.RequestOption{option.WithAPIToken(cfg.Token), option.WithEnvironmentProduction()}
	if cfg.APIURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.APIURL))
	}
	records := cfdns.NewRecordService(opts...)
	dnstest.RunShared(t, dnstest.SharedZone{
		Provider: p,
		Reopen:   func(ctx context.Context) (dns.Provider, error) { return cloudflare.New(ctx, cfg) },
		Outside:  func(t *testing.T, set dns.RecordSet) { outside(t, records, p.ZoneID(), set) },
		Clean: func(t *testing.T, prefix string) {
			deleteUnder(t, records, p.ZoneID(), prefix+"."+strings.TrimSuffix(p.Zone(), "."))
		},
	}, dnstest.Options{
		Timeout: 2 * time.Minute,
		Skip:    skip,
	})
}

// skipTTL skips Replace/TTL, which sets a TTL of 30 s, unless the zone is an Enterprise zone:
// others refuse TTLs under 60 s.
func skipTTL() []string {
	if os.Getenv("DROVER_TEST_CF_ENTERPRISE") != "" {
		return nil
	}
	return []string{"Replace/TTL"}
}

func listNamed(ctx context.Context, t *testing.T, records *cfdns.RecordService, zoneID string, q cfdns.RecordListParams) []cfdns.RecordResponse {
	t.Helper()
	q.ZoneID.Value, q.ZoneID.Present = zoneID, true
	var out []cfdns.RecordResponse
	it := records.ListAutoPaging(ctx, q)
	for it.Next() {
		out = append(out, it.Current())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("listing records: %v", err)
	}
	return out
}

// outside replaces a set with the plain API, as another tool would.
func outside(t *testing.T, records *cfdns.RecordService, zoneID string, set dns.RecordSet) {
	var q cfdns.RecordListParams
	q.Name.Value.Exact.Value, q.Name.Value.Exact.Present, q.Name.Present = strings.TrimSuffix(set.Name, "."), true, true
	q.Type.Value, q.Type.Present = cfdns.RecordListParamsType(set.Type), true
	for _, r := range listNamed(t.Context(), t, records, zoneID, q) {
		var d cfdns.RecordDeleteParams
		d.ZoneID.Value, d.ZoneID.Present = zoneID, true
		if _, err := records.Delete(t.Context(), r.ID, d); err != nil {
			t.Fatalf("deleting %s: %v", r.ID, err)
		}
	}
	for _, v := range set.Values {
		var body cfdns.RecordNewParamsBody
		body.Name.Value, body.Name.Present = strings.TrimSuffix(set.Name, "."), true
		body.Type.Value, body.Type.Present = cfdns.RecordNewParamsBodyType(set.Type), true
		body.Content.Value, body.Content.Present = v, true
		body.TTL.Value, body.TTL.Present = cfdns.TTL(set.TTL), true
		var nq cfdns.RecordNewParams
		nq.ZoneID.Value, nq.ZoneID.Present = zoneID, true
		nq.Body = body
		if _, err := records.New(t.Context(), nq); err != nil {
			t.Fatalf("creating %s %s %s: %v", set.Name, set.Type, v, err)
		}
	}
}

// deleteUnder deletes every record whose name ends in suffix. It runs as a cleanup, when
// t.Context() is already canceled.
func deleteUnder(t *testing.T, records *cfdns.RecordService, zoneID, suffix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var q cfdns.RecordListParams
	q.Name.Value.Endswith.Value, q.Name.Value.Endswith.Present, q.Name.Present = suffix, true, true
	for _, r := range listNamed(ctx, t, records, zoneID, q) {
		var d cfdns.RecordDeleteParams
		d.ZoneID.Value, d.ZoneID.Present = zoneID, true
		if _, err := records.Delete(ctx, r.ID, d); err != nil {
			t.Errorf("cleaning up %s %s: %v", r.Name, r.Type, err)
		}
	}
}
