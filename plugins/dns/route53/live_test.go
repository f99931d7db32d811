package route53_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsroute53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/route53"
)

// TestLive runs the contract suite against a real hosted zone, under names t<N>-<random>.<zone>
// that it deletes afterwards. Credentials come from the SDK's chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, or AWS_PROFILE); they need route53:ListHostedZonesByName,
// ListResourceRecordSets, ChangeResourceRecordSets and GetChange.
func TestLive(t *testing.T) {
	zone := os.Getenv("DROVER_TEST_R53_ZONE")
	haveCreds := os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_PROFILE") != ""
	if zone == "" || !haveCreds {
		t.Skip("set AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and DROVER_TEST_R53_ZONE to run against a real zone")
	}
	cfg := route53.NewDefaultConfig(config.OS())
	cfg.Zone = zone
	cfg.HostedZoneID = os.Getenv("DROVER_TEST_R53_ZONE_ID")
	var load []func(*awsconfig.LoadOptions) error
	if cfg.Profile != "" {
		load = append(load, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(t.Context(), load...)
	if err != nil {
		t.Fatal(err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	// Changes take up to a minute to be INSYNC; poll every 2 s.
	runLive(t, cfg, awsroute53.NewFromConfig(awsCfg), 3*time.Minute, route53.WithPollInterval(2*time.Second))
}

// The live test's harness (its outside edits and clean-up), run against the fake.
func TestLiveHarness(t *testing.T) {
	s, id := newFake(t)
	creds := credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	client := awsroute53.New(awsroute53.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(s.URL)})
	runLive(t, &route53.Config{Zone: zoneName, Endpoint: s.URL}, client, 30*time.Second,
		route53.WithCredentials(creds),
		route53.WithPollInterval(time.Millisecond), route53.WithRetry(fastRetry()))
	if sets := s.Sets(id); len(sets) != 2 {
		t.Fatalf("sets left after the clean-up: %v, want only the apex's NS and SOA", sets)
	}
}

// runLive runs the suite with providers made of cfg and opts; client, a plain Route 53 client,
// makes the outside edits and cleans up.
func runLive(t *testing.T, cfg *route53.Config, client *awsroute53.Client, timeout time.Duration, opts ...route53.Option) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := route53.New(ctx, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	dnstest.RunShared(t, dnstest.SharedZone{
		Provider: p,
		Reopen:   func(ctx context.Context) (dns.Provider, error) { return route53.New(ctx, cfg, opts...) },
		Outside:  func(t *testing.T, set dns.RecordSet) { upsert(t, client, p.HostedZoneID(), set) },
		Clean:    func(t *testing.T, prefix string) { deleteUnder(t, client, p.HostedZoneID(), prefix+"."+p.Zone()) },
	}, dnstest.Options{Timeout: timeout})
}

func upsert(t *testing.T, client *awsroute53.Client, zoneID string, set dns.RecordSet) {
	rrs := &types.ResourceRecordSet{Name: aws.String(set.Name), Type: types.RRType(set.Type), TTL: aws.Int64(int64(set.TTL))}
	for _, v := range set.Values {
		rrs.ResourceRecords = append(rrs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	_, err := client.ChangeResourceRecordSets(t.Context(), &awsroute53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID),
		ChangeBatch:  &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: rrs}}},
	})
	if err != nil {
		t.Fatalf("outside change of %v: %v", set, err)
	}
}

// deleteUnder deletes every record set whose name ends in suffix. It runs as a cleanup, when
// t.Context() is already canceled.
func deleteUnder(t *testing.T, client *awsroute53.Client, zoneID, suffix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var changes []types.Change
	pages := awsroute53.NewListResourceRecordSetsPaginator(client, &awsroute53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			t.Errorf("cleaning up under %s: %v", suffix, err)
			return
		}
		for _, rrs := range out.ResourceRecordSets {
			if strings.HasSuffix(aws.ToString(rrs.Name), "."+suffix) || aws.ToString(rrs.Name) == suffix {
				changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &rrs})
			}
		}
	}
	if len(changes) == 0 {
		return
	}
	_, err := client.ChangeResourceRecordSets(ctx, &awsroute53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID),
		ChangeBatch:  &types.ChangeBatch{Changes: changes},
	})
	if err != nil {
		t.Errorf("cleaning up under %s: %v", suffix, err)
	}
}
