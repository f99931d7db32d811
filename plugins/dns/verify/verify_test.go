package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/plugins/dns/verify"
)

func TestServed(t *testing.T) {
	srv := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{
		"www 60 A 192.0.2.2",
		"www 60 A 192.0.2.1",
		"alias 120 CNAME WWW",
		"v6 60 AAAA 2001:db8:0:0::1",
	}})
	ctx := t.Context()
	for _, tt := range []struct {
		name, typ string
		want      dns.RecordSet
	}{
		{"www.lab.example.", "A", dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1", "192.0.2.2"}}},
		{"WWW.lab.example", "a", dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1", "192.0.2.2"}}},
		{"alias.lab.example.", "CNAME", dns.RecordSet{Name: "alias.lab.example.", Type: "CNAME", TTL: 120, Values: []string{"www.lab.example."}}},
		// The CNAME is not an A record of the alias, though the server adds www's A records.
		{"alias.lab.example.", "A", dns.RecordSet{Name: "alias.lab.example.", Type: "A"}},
		{"v6.lab.example.", "AAAA", dns.RecordSet{Name: "v6.lab.example.", Type: "AAAA", TTL: 60, Values: []string{"2001:db8::1"}}},
		{"v6.lab.example.", "A", dns.RecordSet{Name: "v6.lab.example.", Type: "A"}},     // NODATA
		{"none.lab.example.", "A", dns.RecordSet{Name: "none.lab.example.", Type: "A"}}, // NXDOMAIN
	} {
		got, err := verify.Served(ctx, srv.Addr, tt.name, tt.typ)
		if err != nil {
			t.Fatalf("Served(%s, %s): %v", tt.name, tt.typ, err)
		}
		if !got.Equal(tt.want) || !slices.Equal(got.Values, tt.want.Normalize().Values) {
			t.Errorf("Served(%s, %s) = %v, want %v", tt.name, tt.typ, got, tt.want)
		}
	}
	// A zone the server does not serve.
	_, err := verify.Served(ctx, srv.Addr, "www.other.example.", "A")
	if err == nil || !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("Served of a zone the server does not serve: %v, want an error naming %s", err, srv.Addr)
	}
	if _, err := verify.Served(ctx, srv.Addr, "www.lab.example.", "MX"); !errors.Is(err, dns.ErrUnsupportedType) {
		t.Errorf("Served of MX: %v, want ErrUnsupportedType", err)
	}
}

// A set too large for one UDP answer arrives truncated; Served asks again over TCP.
func TestServedTruncated(t *testing.T) {
	srv := knot.Start(t, "lab.example.")
	set := dns.RecordSet{Name: "big.lab.example.", Type: "TXT", TTL: 60}
	for i := range 40 {
		set.Values = append(set.Values, fmt.Sprintf(`"%02d %s"`, i, strings.Repeat("x", 60)))
	}
	srv.Replace(t, set)
	got, err := verify.Served(t.Context(), srv.Addr, set.Name, set.Type)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(set) {
		t.Fatalf("Served = %d values, want %d: %v", len(got.Values), len(set.Values), got)
	}
}

type call struct {
	server string
	ok     bool
	got    []string
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) progress(server string, ok bool, got []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{server, ok, slices.Clone(got)})
}

func (r *recorder) firstOK(server string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.calls {
		if c.server == server && c.ok {
			return i
		}
	}
	return -1
}

// Two authoritative servers, the second one updated later: WaitServed waits for it.
func TestWaitServedWaitsForTheSlowServer(t *testing.T) {
	blue := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	green := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3", "192.0.2.2"}}
	fast := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	slow := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	fast.Replace(t, green)

	const delay = 700 * time.Millisecond
	updated := make(chan time.Time, 1)
	go func() {
		time.Sleep(delay)
		sent := time.Now()
		if err := slow.Change(context.Background(), green); err != nil {
			t.Error(err)
		}
		updated <- sent
	}()
	var rec recorder
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := verify.WaitServed(ctx, []string{fast.Addr, slow.Addr}, green, 50*time.Millisecond, rec.progress); err != nil {
		t.Fatal(err)
	}
	done := time.Now()
	if sent := <-updated; done.Before(sent) {
		t.Fatalf("WaitServed returned %v before the slow server's update was sent", sent.Sub(done))
	}
	f, s := rec.firstOK(fast.Addr), rec.firstOK(slow.Addr)
	if f < 0 || s < 0 || f > s {
		t.Fatalf("progress: first ok of the fast server at call %d, of the slow one at %d: %v", f, s, rec.calls)
	}
	// Before its update the slow server was reported with what it served.
	if c := rec.calls[1]; c.server != slow.Addr || c.ok || !slices.Equal(c.got, blue.Values) {
		t.Errorf("second progress call = %+v, want the slow server not ok with %v", c, blue.Values)
	}
	if last := rec.calls[len(rec.calls)-1]; !last.ok || !slices.Equal(last.got, []string{"192.0.2.2", "192.0.2.3"}) {
		t.Errorf("last progress call = %+v", last)
	}
}

func TestWaitServedTimeout(t *testing.T) {
	a := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	b := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	green := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.2"}}
	a.Replace(t, green)
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.LocalAddr().String() // takes queries, never answers
	defer l.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err = verify.WaitServed(ctx, []string{a.Addr, b.Addr, silent}, green, 50*time.Millisecond, nil)
	t.Logf("WaitServed: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitServed: %v, want DeadlineExceeded", err)
	}
	msg := err.Error()
	for _, s := range []string{"2 of 3 servers", b.Addr + " serves [192.0.2.1]", silent + " did not answer", "www.lab.example. A is not yet [192.0.2.2]"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not mention %q", s)
		}
	}
	if strings.Contains(msg, a.Addr) {
		t.Errorf("error names %s, which serves the set", a.Addr)
	}
}

func TestWaitServedEmpty(t *testing.T) {
	srv := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"www 60 A 192.0.2.1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// NODATA and NXDOMAIN both serve an empty set.
	for _, name := range []string{"ns1.lab.example.", "none.lab.example."} {
		if err := verify.WaitServed(ctx, []string{srv.Addr}, dns.RecordSet{Name: name, Type: "AAAA"}, 50*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		if err := srv.Change(context.Background(), dns.RecordSet{Name: "www.lab.example.", Type: "A"}); err != nil {
			t.Error(err)
		}
	}()
	if err := verify.WaitServed(ctx, []string{srv.Addr}, dns.RecordSet{Name: "www.lab.example.", Type: "A"}, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := verify.Served(ctx, srv.Addr, "www.lab.example.", "A"); err != nil || !got.Empty() {
		t.Fatalf("Served after the delete = %v, %v", got, err)
	}
}

func TestWaitServedArguments(t *testing.T) {
	ctx := t.Context()
	w := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}
	if err := verify.WaitServed(ctx, nil, w, 0, nil); err == nil {
		t.Error("WaitServed with no servers: no error")
	}
	bad := w
	bad.Values = []string{"not-an-address"}
	if err := verify.WaitServed(ctx, []string{"127.0.0.1:1"}, bad, 0, nil); err == nil || !strings.Contains(err.Error(), "not-an-address") {
		t.Errorf("WaitServed with a bad value: %v", err)
	}
}

func TestNameservers(t *testing.T) {
	srv := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{
		"@ NS ns2",
		"@ NS ns3",
		"ns2 AAAA ::1",
		"ns2 A 127.0.0.2",
		"ns3 A 127.0.0.1", // the same address as ns1
	}})
	got, err := verify.Nameservers(t.Context(), "LAB.example", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:53", "127.0.0.2:53", "[::1]:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("Nameservers = %q, want %q", got, want)
	}
}

// A name server whose addresses cannot be found is skipped when others have some.
func TestNameserversSkipsOneWithoutAddresses(t *testing.T) {
	// The server, used as the resolver, does not serve elsewhere.invalid.: no address for it.
	srv := knot.StartWith(t, "lab.example.", knot.Options{Records: []string{"@ NS ns.elsewhere.invalid."}})
	got, err := verify.Nameservers(t.Context(), "lab.example.", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:53"}; !slices.Equal(got, want) {
		t.Fatalf("Nameservers = %q, want %q", got, want)
	}
}

func TestNameserversUnknownZone(t *testing.T) {
	srv := knot.Start(t, "other.example.")
	_, err := verify.Nameservers(t.Context(), "lab.example.", srv.Addr)
	t.Logf("Nameservers: %v", err)
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "lab.example.") {
		t.Fatalf("Nameservers of a zone the resolver does not know: %v, want an error naming it and the resolver", err)
	}
}
