package cloudflare_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/cloudflare/internal/cffake"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/internal/configtest"
)

const (
	token    = "cf-test-token-Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQ"
	zoneName = "lab.example"
)

// fastRetry keeps the retry tests quick: 4 attempts, millisecond backoffs.
func fastRetry() cloudflare.Retry {
	return cloudflare.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 5 * time.Second}
}

// newFake is a fake with the zone, whose listings hold at most 2 records a page.
func newFake(t *testing.T) *cffake.Server {
	s := cffake.New(t, token)
	s.AddZone(zoneName)
	s.SetMaxPerPage(2)
	return s
}

func newConfig(s *cffake.Server) *cloudflare.Config {
	return &cloudflare.Config{Zone: zoneName + ".", APIURL: s.URL, Token: token}
}

func newProvider(t *testing.T, s *cffake.Server, opts ...cloudflare.Option) *cloudflare.Provider {
	t.Helper()
	return newProviderCfg(t, newConfig(s), opts...)
}

func newProviderCfg(t *testing.T, cfg *cloudflare.Config, opts ...cloudflare.Option) *cloudflare.Provider {
	t.Helper()
	p, err := cloudflare.New(t.Context(), cfg, append([]cloudflare.Option{cloudflare.WithRetry(fastRetry())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		s := newFake(t)
		return dnstest.Fixture{
			Provider: newProvider(t, s),
			Reopen:   func(t *testing.T) dns.Provider { return newProvider(t, s) },
			Outside: func(t *testing.T, set dns.RecordSet) {
				s.ReplaceSet(zoneName, set.Name, set.Type, int(set.TTL), set.Values...)
			},
		}
	}, dnstest.Options{Parallel: true})
}

// The suite again with the client asking for one record a page.
func TestContractOnePerPage(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		s := newFake(t)
		return dnstest.Fixture{
			Provider: newProvider(t, s, cloudflare.WithPageSize(1)),
			Outside: func(t *testing.T, set dns.RecordSet) {
				s.ReplaceSet(zoneName, set.Name, set.Type, int(set.TTL), set.Values...)
			},
		}
	}, dnstest.Options{Parallel: true})
}

func set(ttl uint32, values ...string) dns.RecordSet {
	return dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: ttl, Values: values}
}

func records(s *cffake.Server, name, typ string) map[string]cffake.Record {
	out := map[string]cffake.Record{}
	for _, r := range s.Records(zoneName) {
		if r.Name == name && r.Type == typ {
			out[r.Content] = r
		}
	}
	return out
}

func TestReplaceKeepsProxiedAndComment(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	keep := s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "A", Content: "192.0.2.1", TTL: 1, Proxied: true, Comment: "blue, keep me"})
	s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "A", Content: "192.0.2.2", TTL: 1, Proxied: true, Comment: "blue"})
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1", "192.0.2.3"), nil); err != nil {
		t.Fatal(err)
	}
	got := records(s, "www.lab.example", "A")
	if len(got) != 2 {
		t.Fatalf("records after the replace: %v, want 192.0.2.1 and 192.0.2.3", got)
	}
	if r := got["192.0.2.1"]; r.ID != keep || !r.Proxied || r.Comment != "blue, keep me" {
		t.Errorf("kept record = %+v, want the same record (id %s), proxied, with its comment", r, keep)
	}
	// The new record takes the proxy status of the records it replaces.
	if r, ok := got["192.0.2.3"]; !ok || !r.Proxied {
		t.Errorf("new record = %+v, want proxied like the records it replaces", r)
	}

	// Config.Proxied wins for new records; kept records keep theirs.
	off := false
	cfg := newConfig(s)
	cfg.Proxied = &off
	p2 := newProviderCfg(t, cfg)
	if err := p2.ReplaceSet(t.Context(), set(60, "192.0.2.1", "192.0.2.4"), nil); err != nil {
		t.Fatal(err)
	}
	got = records(s, "www.lab.example", "A")
	if r := got["192.0.2.4"]; r.Proxied || r.TTL != 60 {
		t.Errorf("new record with proxied = false: %+v, want DNS only with TTL 60", r)
	}
	if r := got["192.0.2.1"]; r.ID != keep || !r.Proxied {
		t.Errorf("kept record = %+v, want still proxied", r)
	}
}

func TestReplacePatchesTTLKeepingComment(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	id := s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "A", Content: "192.0.2.1", TTL: 300, Comment: "origin"})
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	r := records(s, "www.lab.example", "A")["192.0.2.1"]
	if r.ID != id || r.TTL != 60 || r.Comment != "origin" {
		t.Fatalf("record = %+v, want id %s with TTL 60 and its comment", r, id)
	}
	var patches int
	for _, q := range s.Requests() {
		if q.Method == http.MethodPatch {
			patches++
		}
	}
	if patches != 1 {
		t.Fatalf("%d PATCH requests, want 1", patches)
	}
}

func TestOneBatchForSeveralChanges(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	if err := p.ReplaceSet(ctx, set(60, "192.0.2.1", "192.0.2.2"), nil); err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests())
	if err := p.ReplaceSet(ctx, set(60, "192.0.2.3", "192.0.2.4"), nil); err != nil {
		t.Fatal(err)
	}
	var writes []cffake.Request
	for _, q := range s.Requests()[before:] {
		if q.Method != http.MethodGet {
			writes = append(writes, q)
		}
	}
	if len(writes) != 1 || writes[0].Method != http.MethodPost || !strings.HasSuffix(writes[0].Path, "/dns_records/batch") {
		t.Fatalf("writes = %v, want one POST .../dns_records/batch", writes)
	}
	// The fake numbers ids in creation order: the zone is 1, the first two records 2 and 3.
	wantBody := `{
		"deletes": [{"id": "00000000000000000000000000000002"}, {"id": "00000000000000000000000000000003"}],
		"posts": [
			{"name": "www.lab.example", "type": "A", "content": "192.0.2.3", "ttl": 60, "proxied": false},
			{"name": "www.lab.example", "type": "A", "content": "192.0.2.4", "ttl": 60, "proxied": false}
		]
	}`
	var got, wantJSON any
	if err := json.Unmarshal(writes[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(wantBody), &wantJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantJSON) {
		t.Fatalf("batch body %s, want %s", writes[0].Body, wantBody)
	}
	// Replacing with the same set writes nothing.
	before = len(s.Requests())
	if err := p.ReplaceSet(ctx, set(60, "192.0.2.4", "192.0.2.3"), nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range s.Requests()[before:] {
		if q.Method != http.MethodGet {
			t.Errorf("an unchanged set sent %s %s", q.Method, q.Path)
		}
	}
}

func TestPagination(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	var want []string
	for i := range 7 {
		v := fmt.Sprintf("192.0.2.%d", i+1)
		want = append(want, v)
		s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "A", Content: v, TTL: 60})
		// Records of other names and types are not part of the set.
		s.AddRecord(zoneName, cffake.Record{Name: fmt.Sprintf("x%d.lab.example", i), Type: "A", Content: v, TTL: 60})
	}
	s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "AAAA", Content: "2001:db8::1", TTL: 60})
	before := len(s.Requests())
	got, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(set(60, want...)) {
		t.Fatalf("Set = %v, want all 7 records", got)
	}
	var pages []string
	for _, q := range s.Requests()[before:] {
		pages = append(pages, q.Query.Get("page"))
		if q.Query.Get("name.exact") != "www.lab.example" || q.Query.Get("type") != "A" {
			t.Errorf("list query %v, want name.exact=www.lab.example and type=A", q.Query)
		}
	}
	if strings.Join(pages, ",") != "1,2,3,4" {
		t.Fatalf("pages requested: %v, want 1,2,3,4 (7 records, 2 a page)", pages)
	}
	// Replacing the 7 with one deletes the 6 others, all found on later pages.
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.7"), nil); err != nil {
		t.Fatal(err)
	}
	if got := records(s, "www.lab.example", "A"); len(got) != 1 {
		t.Fatalf("records after the replace: %v, want only 192.0.2.7", got)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(cffake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Code: 971, Message: "Please wait and consider throttling your request speed", Times: 1})
	start := time.Now()
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Set returned after %v, want at least the 1 s of Retry-After", d)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-2:]
	if last[0].Status != http.StatusTooManyRequests || last[1].Status != http.StatusOK {
		t.Fatalf("last two answers %d, %d: want 429 then 200", last[0].Status, last[1].Status)
	}
	if gap := last[1].Time.Sub(last[0].Time); gap < time.Second {
		t.Fatalf("retried %v after the 429, want at least 1 s", gap)
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(cffake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300", Code: 971, Message: "Please wait and consider throttling your request speed", Times: 1})
	start := time.Now()
	_, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "971") || !strings.Contains(err.Error(), "Retry-After 5m0s") {
		t.Fatalf("Set after a 429 asking for 5 minutes: %v, want an HTTP 429 error with code 971 naming the Retry-After", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v, want at once", d)
	}
}

func TestRetryAfterBeyondDeadline(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(cffake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3", Code: 971, Message: "Please wait", Times: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := p.Set(ctx, "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Set with a deadline before Retry-After: %v, want an error saying so", err)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	for _, html := range []bool{false, true} {
		t.Run(fmt.Sprintf("html=%v", html), func(t *testing.T) {
			s := newFake(t)
			p := newProvider(t, s)
			s.Fail(cffake.Fault{Status: http.StatusBadGateway, HTML: html, Times: 2, Method: http.MethodPost})
			s.Fail(cffake.Fault{Status: http.StatusInternalServerError, Code: 10001, Message: "service temporarily unavailable", Times: 1})
			want := set(60, "192.0.2.1")
			if err := p.ReplaceSet(t.Context(), want, nil); err != nil {
				t.Fatal(err)
			}
			got, err := p.Set(t.Context(), want.Name, want.Type)
			if err != nil || !got.Equal(want) {
				t.Fatalf("Set = %v, %v; want %v", got, err, want)
			}
			var statuses []int
			for _, q := range s.Requests() {
				statuses = append(statuses, q.Status)
			}
			// New's zone lookup, the list (500, 200), the create (502, 502, 200), the Set.
			if fmt.Sprint(statuses) != "[200 500 200 502 502 200 200]" {
				t.Fatalf("answers %v, want [200 500 200 502 502 200 200]", statuses)
			}
		})
	}
}

func TestServerErrorsForever(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.Fail(cffake.Fault{Status: http.StatusServiceUnavailable, Code: 10001, Message: "service temporarily unavailable", Times: -1})
	before := len(s.Requests())
	err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil)
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("ReplaceSet against a failing API: %v, want an *APIError", err)
	}
	if apiErr.Status != http.StatusServiceUnavailable || apiErr.Attempts != 4 || !apiErr.HasCode(10001) {
		t.Fatalf("error %+v: want status 503, 4 attempts, code 10001", apiErr)
	}
	for _, part := range []string{"dns/cloudflare: listing records of www.lab.example. A", "HTTP 503 after 4 attempts", "error 10001: service temporarily unavailable"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	if n := len(s.Requests()) - before; n != 4 {
		t.Fatalf("%d requests, want 4 (the retry policy's attempts)", n)
	}
}

func TestErrorCodesShown(t *testing.T) {
	s := newFake(t)
	s.SetMinTTL(60) // a zone on a plan below Enterprise
	p := newProvider(t, s)
	err := p.ReplaceSet(t.Context(), set(30, "192.0.2.1"), nil)
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !apiErr.HasCode(9021) {
		t.Fatalf("ReplaceSet with TTL 30 on a non-Enterprise zone: %v, want HTTP 400 with code 9021", err)
	}
	if !strings.Contains(err.Error(), "error 9021: Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.") {
		t.Fatalf("error %q does not show Cloudflare's code and message", err)
	}
	if apiErr.Attempts != 1 {
		t.Fatalf("a 400 was tried %d times, want 1", apiErr.Attempts)
	}

	s.Fail(cffake.Fault{Status: http.StatusBadRequest, Code: 81057, Message: "The record already exists.", Method: http.MethodPost, Times: -1})
	err = p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil)
	if err == nil || !strings.Contains(err.Error(), "error 81057: The record already exists.") {
		t.Fatalf("ReplaceSet answered 81057: %v, want the code and message in the error", err)
	}
}

func TestBadTokenNotLeaked(t *testing.T) {
	s := newFake(t)
	cfg := newConfig(s)
	cfg.Token = "wrong-token-0123456789abcdefghijkl"
	_, err := cloudflare.New(t.Context(), cfg, cloudflare.WithRetry(fastRetry()))
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "error 9109: Invalid access token") {
		t.Fatalf("New with a bad token: %v, want HTTP 403 with code 9109", err)
	}
	if strings.Contains(err.Error(), cfg.Token) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), cfg.Token) {
		t.Fatalf("the error shows the token: %v", err)
	}
	cfg.Proxied = new(bool)
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, cfg); strings.Contains(out, cfg.Token) {
			t.Errorf("Sprintf(%q, cfg) shows the token: %s", f, out)
		}
		if out := fmt.Sprintf(f, *cfg); strings.Contains(out, cfg.Token) {
			t.Errorf("Sprintf(%q, *cfg) shows the token: %s", f, out)
		}
	}

	// Errors of a working provider don't show the token either.
	p := newProvider(t, s)
	s.Fail(cffake.Fault{Status: http.StatusServiceUnavailable, Times: -1})
	if _, err := p.Set(t.Context(), "www.lab.example", "A"); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("Set against a failing API: %v (want an error without the token)", err)
	}
}

func TestNewErrors(t *testing.T) {
	s := newFake(t)
	cfg := newConfig(s)
	cfg.Token = ""
	if _, err := cloudflare.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "CLOUDFLARE_API_TOKEN") {
		t.Fatalf("New without a token: %v, want an error naming CLOUDFLARE_API_TOKEN", err)
	}
	cfg = newConfig(s)
	cfg.Zone = "other.example"
	if _, err := cloudflare.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), `"other.example"`) {
		t.Fatalf("New of a missing zone: %v, want an error naming it", err)
	}
	s.AddZone("twice.example")
	s.AddZone("twice.example")
	cfg.Zone = "twice.example"
	if _, err := cloudflare.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "2 zones") {
		t.Fatalf("New of an ambiguous zone: %v, want an error", err)
	}
}

// raceTransport adds a record just before the first write goes out, as another client would.
type raceTransport struct {
	s    *cffake.Server
	done atomic.Bool
}

func (rt *raceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && !rt.done.Swap(true) {
		rt.s.AddRecord(zoneName, cffake.Record{Name: "www.lab.example", Type: "A", Content: "192.0.2.1", TTL: 60})
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestWriteRacedIsPlannedAgain(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s, cloudflare.WithHTTPClient(&http.Client{Transport: &raceTransport{s: s}}))
	want := set(60, "192.0.2.1")
	// The create meets the record another client made: 81058, read again, nothing left to do.
	if err := p.ReplaceSet(t.Context(), want, nil); err != nil {
		t.Fatal(err)
	}
	if got := records(s, "www.lab.example", "A"); len(got) != 1 {
		t.Fatalf("records = %v, want one 192.0.2.1", got)
	}
}

func TestRacedWriteWithPreconditionConflicts(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s, cloudflare.WithHTTPClient(&http.Client{Transport: &raceTransport{s: s}}))
	empty := set(60)
	err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1", "192.0.2.2"), &empty)
	if !errors.Is(err, dns.ErrConflict) {
		t.Fatalf("ReplaceSet whose batch met an outside record: %v, want ErrConflict", err)
	}
}

func TestCNAMEAndTXT(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	ctx := t.Context()
	cname := dns.RecordSet{Name: "alias.lab.example.", Type: "CNAME", TTL: 60, Values: []string{"www.lab.example."}}
	if err := p.ReplaceSet(ctx, cname, nil); err != nil {
		t.Fatal(err)
	}
	if r := records(s, "alias.lab.example", "CNAME"); r["www.lab.example"].Content != "www.lab.example" {
		t.Fatalf("CNAME content %v, want the target without its final dot", r)
	}
	if got, err := p.Set(ctx, cname.Name, "cname"); err != nil || !got.Equal(cname) {
		t.Fatalf("Set = %v, %v; want %v", got, err, cname)
	}
	two := cname
	two.Values = []string{"a.example.", "b.example."}
	if err := p.ReplaceSet(ctx, two, nil); err == nil {
		t.Fatal("a CNAME set with two values: no error")
	}
	on := true
	cfg := newConfig(s)
	cfg.Proxied = &on
	txt := dns.RecordSet{Name: "_acme.lab.example.", Type: "TXT", TTL: 60, Values: []string{`"v=1 a"`, `"v=1 b"`}}
	if err := newProviderCfg(t, cfg).ReplaceSet(ctx, txt, nil); err != nil {
		t.Fatalf("TXT set with proxied = true (TXT records are never proxied): %v", err)
	}
	if got, err := p.Set(ctx, txt.Name, "TXT"); err != nil || !got.Equal(txt) {
		t.Fatalf("Set = %v, %v; want %v", got, err, txt)
	}
	if _, err := p.Set(ctx, "www.lab.example.", "MX"); !errors.Is(err, dns.ErrUnsupportedType) {
		t.Fatalf("Set of MX: %v, want ErrUnsupportedType", err)
	}
	if err := p.ReplaceSet(ctx, set(60, "2001:db8::1"), nil); err == nil || !strings.Contains(err.Error(), "2001:db8::1") {
		t.Fatalf("an IPv6 address in an A set: %v, want an error naming it", err)
	}
}

func TestIPv6Canonical(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	w := dns.RecordSet{Name: "www.lab.example.", Type: "AAAA", TTL: 60, Values: []string{"2001:DB8:0:0::1"}}
	if err := p.ReplaceSet(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range s.Requests()[before:] {
		if q.Method != http.MethodGet {
			t.Fatalf("the same set written differently sent %s %s", q.Method, q.Path)
		}
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) config.LookupEnv {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cfg, err := cloudflare.NewDefaultConfig(env(map[string]string{"CLOUDFLARE_API_TOKEN": "tok"}))
	if err != nil || cfg.Token != "tok" {
		t.Fatalf("NewDefaultConfig = %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		cfg  cloudflare.Config
		attr string
	}{
		{cloudflare.Config{Zone: "example.com"}, ""},
		{cloudflare.Config{Zone: "example.com.", APIURL: "http://127.0.0.1:1/client/v4/"}, ""},
		{cloudflare.Config{Zone: ""}, "zone"},
		{cloudflare.Config{Zone: "bad zone"}, "zone"},
		{cloudflare.Config{Zone: "example.com", APIURL: "ftp://x"}, "api_url"},
		{cloudflare.Config{Zone: "example.com", APIURL: "https://user:pw@api.example/"}, "api_url"},
	} {
		configtest.WantAttr(t, fmt.Sprintf("Validate(%v)", tc.cfg), tc.cfg.Validate(), tc.attr)
	}
}
