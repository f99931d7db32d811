package rfc2136_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
)

func config(srv *knot.Server) *rfc2136.Config {
	return &rfc2136.Config{Server: srv.Addr, Zone: srv.Zone, KeyName: srv.KeyName, Algorithm: srv.Algorithm, Secret: srv.Secret}
}

func newProvider(t *testing.T, cfg *rfc2136.Config) *rfc2136.Provider {
	t.Helper()
	p, err := rfc2136.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// contract runs the dnstest suite against one knotd, a fresh prefix per subtest; the outside
// changes go through the knot helper's own unconditional update.
func contract(t *testing.T, srv *knot.Server) {
	var n atomic.Int64
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		return dnstest.Fixture{
			Provider: newProvider(t, config(srv)),
			Prefix:   fmt.Sprintf("t%d", n.Add(1)),
			Reopen:   func(t *testing.T) dns.Provider { return newProvider(t, config(srv)) },
			Outside:  func(t *testing.T, set dns.RecordSet) { srv.Replace(t, set) },
		}
	}, dnstest.Options{Parallel: true})
}

func TestContract(t *testing.T) {
	contract(t, knot.Start(t, "lab.example."))
}

func TestContractHMACSHA512(t *testing.T) {
	contract(t, knot.StartWith(t, "sha512.example.", knot.Options{Algorithm: "hmac-sha512"}))
}

func TestServedByKnot(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	p := newProvider(t, config(srv))
	w := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 120, Values: []string{"192.0.2.1", "192.0.2.2"}}
	if err := p.ReplaceSet(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	r := srv.Query(t, w.Name, "A")
	var got []string
	for _, rr := range r.Answer {
		got = append(got, rr.String())
	}
	want := []string{"www.lab.example.\t120\tIN\tA\t192.0.2.1", "www.lab.example.\t120\tIN\tA\t192.0.2.2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("knotd answers\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWrongSecret(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	cfg := config(srv)
	cfg.Secret = base64.StdEncoding.EncodeToString([]byte("not the secret the server has....."))
	p := newProvider(t, cfg)
	w := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	err := p.ReplaceSet(t.Context(), w, nil)
	if err == nil {
		t.Fatal("ReplaceSet with a wrong secret: no error")
	}
	t.Logf("ReplaceSet: %v", err)
	for _, s := range []string{"dns/rfc2136: ", "NOTAUTH", "BADSIG", "secret", srv.Addr} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if errors.Is(err, dns.ErrConflict) {
		t.Errorf("error %v wraps ErrConflict", err)
	}
	_, err = p.Set(t.Context(), w.Name, w.Type)
	if err == nil || !strings.Contains(err.Error(), "BADSIG") {
		t.Errorf("Set with a wrong secret: %v, want a BADSIG error", err)
	}
	if r := srv.Query(t, w.Name, "A"); len(r.Answer) != 0 {
		t.Errorf("knotd serves %v after a rejected update", r.Answer)
	}
}

func TestWrongKeyName(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	cfg := config(srv)
	cfg.KeyName = "someone-else."
	p := newProvider(t, cfg)
	err := p.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}, nil)
	t.Logf("ReplaceSet: %v", err)
	if err == nil || !strings.Contains(err.Error(), "BADKEY") || !strings.Contains(err.Error(), "key_name") {
		t.Fatalf("ReplaceSet with an unknown key: %v, want a BADKEY error naming key_name", err)
	}
}

func TestWrongAlgorithm(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	cfg := config(srv)
	cfg.Algorithm = "hmac-sha512"
	p := newProvider(t, cfg)
	err := p.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}, nil)
	t.Logf("ReplaceSet: %v", err)
	if err == nil || !strings.Contains(err.Error(), "NOTAUTH") {
		t.Fatalf("ReplaceSet with the wrong algorithm: %v, want NOTAUTH", err)
	}
}

func TestZoneNotServed(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	cfg := config(srv)
	cfg.Zone = "other.example."
	p := newProvider(t, cfg)
	err := p.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.other.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}, nil)
	t.Logf("ReplaceSet: %v", err)
	if err == nil || !strings.Contains(err.Error(), "other.example.") {
		t.Fatalf("ReplaceSet in a zone the server does not serve: %v, want an error naming the zone", err)
	}
	if _, err := p.Set(t.Context(), "www.other.example.", "A"); err == nil {
		t.Fatal("Set in a zone the server does not serve: no error")
	}
}

func TestBadValue(t *testing.T) {
	p := newProvider(t, &rfc2136.Config{Server: "127.0.0.1:1", Zone: "lab.example.", KeyName: "k", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"})
	err := p.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"not-an-address"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"not-an-address"`) {
		t.Fatalf("ReplaceSet with a bad value: %v, want an error naming it", err)
	}
	_, err = p.Set(t.Context(), "www.lab.example.", "MX")
	if !errors.Is(err, dns.ErrUnsupportedType) {
		t.Fatalf("Set of MX: %v, want ErrUnsupportedType", err)
	}
}

// A server that takes the connection and never answers: the deadline must end the call.
func TestDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := newProvider(t, &rfc2136.Config{Server: l.Addr().String(), Zone: "lab.example.", KeyName: "k", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.ReplaceSet(ctx, dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReplaceSet against a silent server: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("ReplaceSet took %v with a 300ms deadline", d)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = p.Set(ctx, "www.lab.example.", "A")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Set canceled while waiting: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Set took %v to notice the cancel", d)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := newProvider(t, &rfc2136.Config{Server: addr, Zone: "lab.example.", KeyName: "k", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"})
	_, err = p.Set(t.Context(), "www.lab.example.", "A")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Set at a closed port: %v, want an error naming %s", err, addr)
	}
}

func TestNew(t *testing.T) {
	good := rfc2136.Config{Server: "127.0.0.1:53", Zone: "lab.example.", KeyName: "drover", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"}
	for _, tt := range []struct {
		name string
		edit func(c *rfc2136.Config)
		want string
	}{
		{"no key", func(c *rfc2136.Config) { c.KeyName = "" }, "key_name is not set"},
		{"no secret", func(c *rfc2136.Config) { c.Secret = "" }, "DROVER_TSIG_SECRET"},
		{"bad secret", func(c *rfc2136.Config) { c.Secret = "not base64!" }, "not base64"},
		{"bad algorithm", func(c *rfc2136.Config) { c.Algorithm = "hmac-md5" }, `"hmac-md5"`},
		{"bad server", func(c *rfc2136.Config) { c.Server = "ns1" }, `"ns1"`},
		{"bad key name", func(c *rfc2136.Config) { c.KeyName = "a..b" }, `"a..b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := rfc2136.New(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dns/rfc2136: ") {
				t.Fatalf("New: %v, want an error mentioning %s", err, tt.want)
			}
		})
	}
	if _, err := rfc2136.New(&good); err != nil {
		t.Fatal(err)
	}
}
