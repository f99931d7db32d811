package route53_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/internal/configtest"
	"github.com/drover-dev/drover/plugins/dns/route53"
	"github.com/drover-dev/drover/plugins/dns/route53/internal/r53fake"
)

const (
	accessKey = "AKIADROVERTEST000001"
	secretKey = "drover-test-secret-key-0123456789abcdefgh"
	zoneName  = "lab.example."
)

// fastRetry keeps the retry tests quick: 4 attempts, millisecond backoffs.
func fastRetry() route53.Retry {
	return route53.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond}
}

// newFake is a fake holding the zone, whose changes are PENDING for one GetChange.
func newFake(t *testing.T) (*r53fake.Server, string) {
	s := r53fake.New(t, accessKey)
	s.SetPendingPolls(1)
	return s, s.AddZone(zoneName, false)
}

func newProvider(t *testing.T, s *r53fake.Server, opts ...route53.Option) *route53.Provider {
	t.Helper()
	return newProviderCfg(t, &route53.Config{Zone: zoneName, Endpoint: s.URL}, opts...)
}

func newProviderCfg(t *testing.T, cfg *route53.Config, opts ...route53.Option) *route53.Provider {
	t.Helper()
	p, err := route53.New(t.Context(), cfg, append([]route53.Option{
		route53.WithCredentials(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		route53.WithPollInterval(time.Millisecond),
		route53.WithRetry(fastRetry()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func outside(s *r53fake.Server, id string) func(*testing.T, dns.RecordSet) {
	return func(_ *testing.T, set dns.RecordSet) {
		s.ReplaceSet(id, r53fake.RecordSet{Name: set.Name, Type: set.Type, TTL: int64(set.TTL), Values: set.Values})
	}
}

func TestContract(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		s, id := newFake(t)
		return dnstest.Fixture{
			Provider: newProvider(t, s),
			Reopen:   func(t *testing.T) dns.Provider { return newProvider(t, s) },
			Outside:  outside(s, id),
		}
	}, dnstest.Options{Parallel: true})
}

func set(ttl uint32, values ...string) dns.RecordSet {
	return dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: ttl, Values: values}
}

// count returns how many requests matched method and a part of the path, and their answers.
func count(reqs []r53fake.Request, method, part string) (int, []string) {
	var n int
	var answers []string
	for _, q := range reqs {
		if q.Method == method && strings.Contains(q.Path, part) {
			n++
			a := fmt.Sprint(q.Status)
			if q.Code != "" {
				a += " " + q.Code
			}
			answers = append(answers, a)
		}
	}
	return n, answers
}

func TestWaitsForInsync(t *testing.T) {
	s, _ := newFake(t)
	s.SetPendingPolls(3)
	p := newProvider(t, s)
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if n, _ := count(reqs, http.MethodGet, "/2013-04-01/change/"); n != 4 {
		t.Fatalf("%d GetChange calls, want 4 (3 PENDING, then INSYNC)", n)
	}
	if last := reqs[len(reqs)-1]; !strings.HasPrefix(last.Path, "/2013-04-01/change/") {
		t.Fatalf("last request %s %s, want ReplaceSet to end with GetChange", last.Method, last.Path)
	}
}

func TestInsyncWaitHonoursContext(t *testing.T) {
	s, _ := newFake(t)
	s.SetPendingPolls(1 << 30)
	p := newProvider(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := p.ReplaceSet(ctx, set(60, "192.0.2.1"), nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "accepted") {
		t.Fatalf("ReplaceSet never INSYNC: %v, want a deadline error saying the change was accepted", err)
	}
	// The change stands.
	if got, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil || !got.Equal(set(60, "192.0.2.1")) {
		t.Fatalf("Set = %v, %v; want the accepted change", got, err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	s.Fail(r53fake.Fault{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded", Times: 2})
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	_, answers := count(s.Requests(), http.MethodGet, "/rrset")
	if fmt.Sprint(answers) != "[400 Throttling 400 Throttling 200]" {
		t.Fatalf("ListResourceRecordSets answers %v, want two Throttling then 200", answers)
	}
}

func TestPriorRequestNotCompleteRetried(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	s.Fail(r53fake.Fault{Status: http.StatusBadRequest, Code: "PriorRequestNotComplete",
		Message: "The request was rejected because Route 53 was still processing a prior request.", Times: 3, Method: http.MethodPost})
	want := set(60, "192.0.2.1")
	if err := p.ReplaceSet(t.Context(), want, nil); err != nil {
		t.Fatal(err)
	}
	_, answers := count(s.Requests(), http.MethodPost, "/rrset")
	if fmt.Sprint(answers) != "[400 PriorRequestNotComplete 400 PriorRequestNotComplete 400 PriorRequestNotComplete 200]" {
		t.Fatalf("ChangeResourceRecordSets answers %v, want three PriorRequestNotComplete then 200", answers)
	}
	if got, err := p.Set(t.Context(), want.Name, want.Type); err != nil || !got.Equal(want) {
		t.Fatalf("Set = %v, %v; want %v", got, err, want)
	}
}

func TestThrottlingForever(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	s.Fail(r53fake.Fault{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded", Times: -1})
	before := len(s.Requests())
	_, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "Throttling") || !strings.Contains(err.Error(), "dns/route53: listing www.lab.example. A") {
		t.Fatalf("Set against a throttling API: %v, want an error naming Throttling", err)
	}
	if n := len(s.Requests()) - before; n != 4 {
		t.Fatalf("%d requests, want 4 (the retry policy's attempts)", n)
	}
	if strings.Contains(err.Error(), secretKey) {
		t.Fatalf("the error shows the secret key: %v", err)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	s.Fail(r53fake.Fault{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "Service Unavailable", Times: 2})
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
}

// changeDoc is the part of a ChangeResourceRecordSetsRequest the tests compare.
type changeDoc struct {
	Changes []struct {
		Action string   `xml:"Action"`
		Name   string   `xml:"ResourceRecordSet>Name"`
		Type   string   `xml:"ResourceRecordSet>Type"`
		TTL    int      `xml:"ResourceRecordSet>TTL"`
		Values []string `xml:"ResourceRecordSet>ResourceRecords>ResourceRecord>Value"`
	} `xml:"ChangeBatch>Changes>Change"`
}

func lastChange(t *testing.T, s *r53fake.Server) string {
	t.Helper()
	reqs := s.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == http.MethodPost {
			var doc changeDoc
			if err := xml.Unmarshal(reqs[i].Body, &doc); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, c := range doc.Changes {
				parts = append(parts, fmt.Sprintf("%s %s %d %s %v", c.Action, c.Name, c.TTL, c.Type, c.Values))
			}
			return strings.Join(parts, "; ")
		}
	}
	t.Fatal("no change batch was sent")
	return ""
}

func TestChangeBatches(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	blue, green := set(60, "192.0.2.2", "192.0.2.1"), set(60, "192.0.2.3")
	for _, step := range []struct {
		want       dns.RecordSet
		prev       *dns.RecordSet
		wantChange string
	}{
		{blue, nil, "UPSERT www.lab.example. 60 A [192.0.2.1 192.0.2.2]"},
		{green, &blue, "DELETE www.lab.example. 60 A [192.0.2.1 192.0.2.2]; CREATE www.lab.example. 60 A [192.0.2.3]"},
		{set(60), nil, "DELETE www.lab.example. 60 A [192.0.2.3]"},
		{blue, new(set(60)), "CREATE www.lab.example. 60 A [192.0.2.1 192.0.2.2]"},
		{set(60), &blue, "DELETE www.lab.example. 60 A [192.0.2.1 192.0.2.2]"},
	} {
		if err := p.ReplaceSet(ctx, step.want, step.prev); err != nil {
			t.Fatalf("ReplaceSet(%v, %v): %v", step.want, step.prev, err)
		}
		if got := lastChange(t, s); got != step.wantChange {
			t.Fatalf("ReplaceSet(%v, %v) sent %q, want %q", step.want, step.prev, got, step.wantChange)
		}
	}
	// Nothing to change: no batch.
	before := len(s.Requests())
	for _, prev := range []*dns.RecordSet{nil, new(set(60))} {
		if err := p.ReplaceSet(ctx, set(60), prev); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := count(s.Requests()[before:], http.MethodPost, "/rrset"); n != 0 {
		t.Fatalf("%d change batches for sets that were already right, want 0", n)
	}
}

func TestStalePrecondition(t *testing.T) {
	s, id := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	blue := set(60, "192.0.2.1")
	if err := p.ReplaceSet(ctx, blue, nil); err != nil {
		t.Fatal(err)
	}
	other := set(60, "198.51.100.1")
	outside(s, id)(t, other)
	err := p.ReplaceSet(ctx, set(60, "192.0.2.2"), &blue)
	if !errors.Is(err, dns.ErrConflict) || !strings.Contains(err.Error(), "InvalidChangeBatch") ||
		!strings.Contains(err.Error(), "Tried to delete resource record set [name='www.lab.example.', type='A'] but the values provided do not match the current values") {
		t.Fatalf("ReplaceSet with a stale prev: %v, want ErrConflict from Route 53's InvalidChangeBatch", err)
	}
	if _, answers := count(s.Requests(), http.MethodPost, "/rrset"); answers[len(answers)-1] != "400 InvalidChangeBatch" {
		t.Fatalf("the last batch got %v, want InvalidChangeBatch (Route 53 checks the precondition)", answers)
	}
	if got, err := p.Set(ctx, blue.Name, blue.Type); err != nil || !got.Equal(other) {
		t.Fatalf("Set = %v, %v; want the outside change %v untouched", got, err, other)
	}
	// Route 53 also tells a stale TTL.
	stale := other
	stale.TTL = 300
	if err := p.ReplaceSet(ctx, set(60, "192.0.2.2"), &stale); !errors.Is(err, dns.ErrConflict) {
		t.Fatalf("ReplaceSet with a prev of another TTL: %v, want ErrConflict", err)
	}
}

func TestInvalidValueIsNoConflict(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	empty := set(60)
	err := p.ReplaceSet(t.Context(), set(60, "192.0.2.300"), &empty)
	if err == nil || errors.Is(err, dns.ErrConflict) || !strings.Contains(err.Error(), "ARRDATAIllegalIPv4Address") {
		t.Fatalf("ReplaceSet with a bad address: %v, want Route 53's message and no ErrConflict", err)
	}
	err = p.ReplaceSet(t.Context(), dns.RecordSet{Name: "txt.lab.example.", Type: "TXT", TTL: 60, Values: []string{"unquoted"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "quotation marks") {
		t.Fatalf("ReplaceSet with an unquoted TXT value: %v, want Route 53's message", err)
	}
}

// lostAnswer applies the first change batch but answers it with a 500, as when a response is lost.
type lostAnswer struct{ done atomic.Bool }

func (l *lostAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || l.done.Swap(true) {
		return res, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	body := `<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>lost</Message></Error><RequestId>x</RequestId></ErrorResponse>`
	return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

func TestRetriedBatchAlreadyApplied(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	blue := set(60, "192.0.2.1")
	if err := p.ReplaceSet(t.Context(), blue, nil); err != nil {
		t.Fatal(err)
	}
	p = newProvider(t, s, route53.WithHTTPClient(&http.Client{Transport: &lostAnswer{}}))
	green := set(60, "192.0.2.2")
	// The batch is applied, its answer lost; the SDK retries and Route 53 refuses the retry (blue
	// is gone). ReplaceSet reads the set, finds green, and succeeds.
	if err := p.ReplaceSet(t.Context(), green, &blue); err != nil {
		t.Fatalf("ReplaceSet whose applied batch was retried: %v", err)
	}
	if _, answers := count(s.Requests(), http.MethodPost, "/rrset"); fmt.Sprint(answers[1:]) != "[200 400 InvalidChangeBatch]" {
		t.Fatalf("batches answered %v, want the second applied (its answer lost) and its retry refused", answers)
	}
}

func TestWildcardAndCNAME(t *testing.T) {
	s, _ := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	w := dns.RecordSet{Name: "*.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	if err := p.ReplaceSet(ctx, w, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Set(ctx, w.Name, w.Type); err != nil || !got.Equal(w) {
		t.Fatalf("Set of a wildcard (listed as \\052) = %v, %v; want %v", got, err, w)
	}
	c := dns.RecordSet{Name: "alias.lab.example.", Type: "CNAME", TTL: 60, Values: []string{"www.lab.example."}}
	if err := p.ReplaceSet(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Set(ctx, c.Name, "cname"); err != nil || !got.Equal(c) {
		t.Fatalf("Set = %v, %v; want %v", got, err, c)
	}
	if _, err := p.Set(ctx, "www.lab.example.", "MX"); !errors.Is(err, dns.ErrUnsupportedType) {
		t.Fatalf("Set of MX: %v, want ErrUnsupportedType", err)
	}
	// The apex's NS and SOA sets are not A sets.
	if got, err := p.Set(ctx, zoneName, "A"); err != nil || !got.Empty() {
		t.Fatalf("Set of the apex's A = %v, %v; want no records", got, err)
	}
}

func TestZoneLookup(t *testing.T) {
	s := r53fake.New(t, accessKey)
	s.AddZone("a.lab.example.", false)
	id := s.AddZone(zoneName, false)
	s.AddZone("z.example.", false)
	if p := newProvider(t, s); p.HostedZoneID() != id {
		t.Fatalf("HostedZoneID() = %s, want %s", p.HostedZoneID(), id)
	}
	opts := []route53.Option{route53.WithCredentials(credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""))}
	if _, err := route53.New(t.Context(), &route53.Config{Zone: "missing.example", Endpoint: s.URL}, opts...); err == nil || !strings.Contains(err.Error(), `"missing.example."`) {
		t.Fatalf("New of a missing zone: %v, want an error naming it", err)
	}
	private := s.AddZone(zoneName, true)
	_, err := route53.New(t.Context(), &route53.Config{Zone: zoneName, Endpoint: s.URL}, opts...)
	if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), private+" (private)") || !strings.Contains(err.Error(), "hosted_zone_id") {
		t.Fatalf("New with a public and a private zone of the name: %v, want an error listing both", err)
	}
	p := newProviderCfg(t, &route53.Config{Zone: zoneName, Endpoint: s.URL, HostedZoneID: "/hostedzone/" + private})
	if p.HostedZoneID() != private {
		t.Fatalf("HostedZoneID() = %s, want %s", p.HostedZoneID(), private)
	}
	bad := []route53.Option{route53.WithCredentials(credentials.NewStaticCredentialsProvider("AKIAWRONG", secretKey, "")), route53.WithRetry(fastRetry())}
	if _, err := route53.New(t.Context(), &route53.Config{Zone: "a.lab.example", Endpoint: s.URL}, bad...); err == nil || !strings.Contains(err.Error(), "InvalidClientTokenId") || strings.Contains(err.Error(), secretKey) {
		t.Fatalf("New with an unknown access key: %v, want InvalidClientTokenId, without the secret", err)
	}
}

func TestConfig(t *testing.T) {
	env := func(k string) (string, bool) { return map[string]string{"AWS_PROFILE": "lab"}[k], k == "AWS_PROFILE" }
	if cfg := route53.NewDefaultConfig(config.LookupEnv(env)); cfg.Profile != "lab" {
		t.Fatalf("NewDefaultConfig().Profile = %q, want lab", cfg.Profile)
	}
	for _, tc := range []struct {
		cfg  route53.Config
		attr string
	}{
		{route53.Config{Zone: "example.com"}, ""},
		{route53.Config{Zone: "example.com.", HostedZoneID: "/hostedzone/Z0123456789ABCDEFGHIJ", Endpoint: "http://127.0.0.1:4566"}, ""},
		{route53.Config{Zone: "bad zone"}, "zone"},
		{route53.Config{Zone: "example.com", HostedZoneID: "z-lower"}, "hosted_zone_id"},
		{route53.Config{Zone: "example.com", Endpoint: "route53.amazonaws.com"}, "endpoint"},
	} {
		configtest.WantAttr(t, fmt.Sprintf("Validate(%+v)", tc.cfg), tc.cfg.Validate(), tc.attr)
	}
	if !reflect.DeepEqual(route53.DefaultRetry(), route53.Retry{Attempts: 8, Base: 500 * time.Millisecond, Max: 20 * time.Second}) {
		t.Errorf("DefaultRetry() = %+v", route53.DefaultRetry())
	}
}
