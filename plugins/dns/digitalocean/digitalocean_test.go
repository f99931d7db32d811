package digitalocean_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/digitalocean"
	"github.com/drover-dev/drover/plugins/dns/digitalocean/internal/dofake"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/internal/configtest"
)

const (
	token  = "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	domain = "lab.example"
)

// fastRetry keeps the retry tests quick: 4 attempts, millisecond backoffs.
func fastRetry() digitalocean.Retry {
	return digitalocean.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 5 * time.Second,
		AttemptTimeout: 5 * time.Second, CallTimeout: 20 * time.Second}
}

// newFake is a fake with the domain, whose listings hold at most 2 records a page.
func newFake(t *testing.T) *dofake.Server {
	s := dofake.New(t, token)
	s.AddDomain(domain)
	s.SetMaxPerPage(2)
	return s
}

func newConfig(s *dofake.Server) *digitalocean.Config {
	return &digitalocean.Config{Zone: domain + ".", APIURL: s.URL, Token: token}
}

func newProvider(t *testing.T, s *dofake.Server, opts ...digitalocean.Option) *digitalocean.Provider {
	t.Helper()
	p, err := digitalocean.New(t.Context(), newConfig(s), append([]digitalocean.Option{digitalocean.WithRetry(fastRetry())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fromFactory opens providers as drover does: the factory's config from the environment (the
// token), the block's attributes on top, Open.
func fromFactory(s *dofake.Server) func(t *testing.T) dns.Provider {
	env := map[string]string{"DIGITALOCEAN_TOKEN": token}
	return contract.FromFactory(digitalocean.Factory(), func(cfg any) {
		c := cfg.(*digitalocean.Config)
		c.Zone, c.APIURL = domain, s.URL
	}, config.Env{Name: "do", Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
}

// relative is a set's name as the API's records hold it.
func relative(name string) string {
	if name == domain+"." {
		return "@"
	}
	return strings.TrimSuffix(name, "."+domain+".")
}

func outside(s *dofake.Server) func(t *testing.T, set dns.RecordSet) {
	return func(t *testing.T, set dns.RecordSet) {
		s.ReplaceSet(domain, relative(set.Name), set.Type, int(set.TTL), set.Values...)
	}
}

func TestContract(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		s := newFake(t)
		open := fromFactory(s)
		return dnstest.Fixture{Provider: open(t), Reopen: open, Outside: outside(s)}
	}, dnstest.Options{Parallel: true})
}

// The suite again with the client asking for one record a page.
func TestContractOnePerPage(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		s := newFake(t)
		open := func(t *testing.T) dns.Provider { return newProvider(t, s, digitalocean.WithPageSize(1)) }
		return dnstest.Fixture{Provider: open(t), Reopen: open, Outside: outside(s)}
	}, dnstest.Options{Parallel: true})
}

func set(ttl uint32, values ...string) dns.RecordSet {
	return dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: ttl, Values: values}
}

func records(s *dofake.Server, name, typ string) map[string]dofake.Record {
	out := map[string]dofake.Record{}
	for _, r := range s.Records(domain) {
		if r.Name == name && r.Type == typ {
			out[r.Data] = r
		}
	}
	return out
}

// writes returns the requests after the first n that were not GETs, as "METHOD path".
func writes(s *dofake.Server, n int) ([]string, []dofake.Request) {
	var out []string
	var reqs []dofake.Request
	for _, q := range s.Requests()[n:] {
		if q.Method != http.MethodGet {
			out = append(out, q.Method+" "+strings.TrimPrefix(q.Path, "/v2/domains/"+domain))
			reqs = append(reqs, q)
		}
	}
	return out, reqs
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestCutoverIsOnePut(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	blue := set(60, "192.0.2.1")
	if err := p.ReplaceSet(t.Context(), blue, nil); err != nil {
		t.Fatal(err)
	}
	id := records(s, "www", "A")["192.0.2.1"].ID
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.2"), &blue); err != nil {
		t.Fatal(err)
	}
	got, reqs := writes(s, n)
	if want := []string{fmt.Sprintf("PUT /records/%d", id)}; !slices.Equal(got, want) {
		t.Fatalf("writes %v, want %v: the record itself moves to green", got, want)
	}
	jsonEqual(t, reqs[0].Body, `{"type":"A","name":"www","data":"192.0.2.2","ttl":60,"priority":0,"port":0,"weight":0,"flags":0}`)
	if r := records(s, "www", "A"); len(r) != 1 || r["192.0.2.2"].ID != id {
		t.Fatalf("records %v, want record %d holding 192.0.2.2", r, id)
	}
	// Replacing with the same set writes nothing.
	n = len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.2"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := writes(s, n); len(got) != 0 {
		t.Fatalf("an unchanged set sent %v", got)
	}
}

func TestWriteOrder(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1", "192.0.2.2"), nil); err != nil {
		t.Fatal(err)
	}
	// Two records change value, one more is created: updates first, so the name never goes empty.
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.3", "192.0.2.4", "192.0.2.5"), nil); err != nil {
		t.Fatal(err)
	}
	got, reqs := writes(s, n)
	if len(got) != 3 || !strings.HasPrefix(got[0], "PUT /records/") || !strings.HasPrefix(got[1], "PUT /records/") || got[2] != "POST /records" {
		t.Fatalf("writes %v, want two PUTs then one POST", got)
	}
	jsonEqual(t, reqs[2].Body, `{"type":"A","name":"www","data":"192.0.2.5","ttl":60,"priority":0,"port":0,"weight":0,"flags":0}`)
	// Back to one value: one record moves, the two others are deleted after it.
	n = len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.9"), nil); err != nil {
		t.Fatal(err)
	}
	got, _ = writes(s, n)
	if len(got) != 3 || !strings.HasPrefix(got[0], "PUT ") || !strings.HasPrefix(got[1], "DELETE ") || !strings.HasPrefix(got[2], "DELETE ") {
		t.Fatalf("writes %v, want a PUT then two DELETEs", got)
	}
	if r := records(s, "www", "A"); len(r) != 1 || r["192.0.2.9"].TTL != 60 {
		t.Fatalf("records %v, want only 192.0.2.9", r)
	}
}

func TestTTLChangeIsAPut(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	id := s.AddRecord(domain, dofake.Record{Type: "A", Name: "www", Data: "192.0.2.1", TTL: 300})
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(30, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := writes(s, n); !slices.Equal(got, []string{fmt.Sprintf("PUT /records/%d", id)}) {
		t.Fatalf("writes %v, want one PUT of record %d", got, id)
	}
	if r := records(s, "www", "A")["192.0.2.1"]; r.TTL != 30 {
		t.Fatalf("record %+v, want TTL 30", r)
	}
}

func TestPagination(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s, digitalocean.WithPageSize(3))
	var want []string
	for i := range 7 {
		v := fmt.Sprintf("192.0.2.%d", i+1)
		want = append(want, v)
		s.AddRecord(domain, dofake.Record{Type: "A", Name: "www", Data: v, TTL: 60})
		// Records of other names and types are not part of the set.
		s.AddRecord(domain, dofake.Record{Type: "A", Name: fmt.Sprintf("x%d", i), Data: v, TTL: 60})
	}
	s.AddRecord(domain, dofake.Record{Type: "AAAA", Name: "www", Data: "2001:db8::1", TTL: 60})
	n := len(s.Requests())
	got, err := p.Set(t.Context(), "www.lab.example.", "A")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(set(60, want...)) {
		t.Fatalf("Set = %v, want all 7 records", got)
	}
	var pages []string
	for _, q := range s.Requests()[n:] {
		pages = append(pages, q.Query.Get("page"))
		if q.Query.Get("name") != "www.lab.example" || q.Query.Get("type") != "A" || q.Query.Get("per_page") != "3" {
			t.Errorf("list query %v, want name=www.lab.example, type=A and per_page=3", q.Query)
		}
	}
	// The fake gives 2 a page whatever the client asks: the client follows links.pages.next.
	if strings.Join(pages, ",") != "1,2,3,4" {
		t.Fatalf("pages requested: %v, want 1,2,3,4 (7 records, 2 a page)", pages)
	}
	// Replacing the 7 with one deletes the 6 others, found on later pages.
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.7"), nil); err != nil {
		t.Fatal(err)
	}
	if got := records(s, "www", "A"); len(got) != 1 {
		t.Fatalf("records after the replace: %v, want only 192.0.2.7", got)
	}
}

// A duplicate record (a create retried after it had in fact been applied) is deleted by the next
// ReplaceSet's check.
func TestDuplicateRecordDeleted(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s)
	s.AddRecord(domain, dofake.Record{Type: "A", Name: "www", Data: "192.0.2.1", TTL: 60})
	dup := s.AddRecord(domain, dofake.Record{Type: "A", Name: "www", Data: "192.0.2.1", TTL: 60})
	n := len(s.Requests())
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.1"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := writes(s, n); !slices.Equal(got, []string{fmt.Sprintf("DELETE /records/%d", dup)}) {
		t.Fatalf("writes %v, want the duplicate %d deleted", got, dup)
	}
}

// raceTransport deletes the records of www A just before the first write goes out, as another
// client would.
type raceTransport struct {
	s    *dofake.Server
	done atomic.Bool
}

func (rt *raceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && !rt.done.Swap(true) {
		rt.s.ReplaceSet(domain, "www", "A", 60)
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestRecordDeletedMeanwhileIsPlannedAgain(t *testing.T) {
	s := newFake(t)
	p := newProvider(t, s, digitalocean.WithTransport(&raceTransport{s: s}))
	s.AddRecord(domain, dofake.Record{Type: "A", Name: "www", Data: "192.0.2.1", TTL: 60})
	// The PUT of the old record meets a 404: read again, and create the record instead.
	if err := p.ReplaceSet(t.Context(), set(60, "192.0.2.2"), nil); err != nil {
		t.Fatal(err)
	}
	if got := records(s, "www", "A"); len(got) != 1 || got["192.0.2.2"].TTL != 60 {
		t.Fatalf("records %v, want 192.0.2.2", got)
	}
}

func TestNewErrors(t *testing.T) {
	s := newFake(t)
	cfg := newConfig(s)
	cfg.Token = ""
	if _, err := digitalocean.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "DIGITALOCEAN_TOKEN") {
		t.Fatalf("New without a token: %v, want an error naming DIGITALOCEAN_TOKEN", err)
	}
	cfg = newConfig(s)
	cfg.Zone = "other.example"
	_, err := digitalocean.New(t.Context(), cfg, digitalocean.WithRetry(fastRetry()))
	var ae *digitalocean.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.ID != "not_found" || !strings.Contains(err.Error(), `"other.example"`) || !strings.Contains(err.Error(), "no such domain") {
		t.Fatalf("New of a missing domain: %v, want a 404 not_found naming it", err)
	}
	if ae.Attempts != 1 {
		t.Fatalf("a 404 was tried %d times, want 1", ae.Attempts)
	}
	cfg = newConfig(s)
	cfg.Token = "dop_v1_wrong0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl"
	_, err = digitalocean.New(t.Context(), cfg, digitalocean.WithRetry(fastRetry()))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 unauthorized: Unable to authenticate you") || !strings.Contains(err.Error(), "DIGITALOCEAN_TOKEN") {
		t.Fatalf("New with a bad token: %v, want HTTP 401 unauthorized", err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), cfg.Token) {
		t.Fatalf("the error shows the token: %v", err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, cfg); strings.Contains(out, cfg.Token) {
			t.Errorf("Sprintf(%q, cfg) shows the token: %s", f, out)
		}
		if out := fmt.Sprintf(f, *cfg); strings.Contains(out, cfg.Token) {
			t.Errorf("Sprintf(%q, *cfg) shows the token: %s", f, out)
		}
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) config.LookupEnv {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cfg, err := digitalocean.NewDefaultConfig(env(map[string]string{"DIGITALOCEAN_TOKEN": "tok"}))
	if err != nil || cfg.Token != "tok" {
		t.Fatalf("NewDefaultConfig = %+v, %v", cfg, err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = digitalocean.NewDefaultConfig(env(map[string]string{"DIGITALOCEAN_TOKEN_FILE": file}))
	if err != nil || cfg.Token != "from-file" {
		t.Fatalf("NewDefaultConfig with DIGITALOCEAN_TOKEN_FILE = %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		cfg  digitalocean.Config
		attr string
	}{
		{digitalocean.Config{Zone: "example.com"}, ""},
		{digitalocean.Config{Zone: "example.com.", APIURL: "http://127.0.0.1:1/"}, ""},
		{digitalocean.Config{Zone: ""}, "zone"},
		{digitalocean.Config{Zone: "bad zone"}, "zone"},
		{digitalocean.Config{Zone: "example.com", APIURL: "ftp://x"}, "api_url"},
		{digitalocean.Config{Zone: "example.com", APIURL: "https://user:pw@api.example/"}, "api_url"},
	} {
		configtest.WantAttr(t, fmt.Sprintf("Validate(%v)", tc.cfg), tc.cfg.Validate(), tc.attr)
	}
}

func TestNotVerifiedElsewhere(t *testing.T) {
	s := newFake(t)
	var p dns.Provider = newProvider(t, s)
	if _, ok := p.(dns.Verified); ok {
		t.Fatal("the provider claims servers of its own to verify at; the domain's NS records (ns1-3.digitalocean.com) are the truth")
	}
}
