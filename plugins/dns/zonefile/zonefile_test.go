package zonefile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/internal/flock"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest"
	"github.com/drover-dev/drover/plugins/dns/dnstest/nsd"
	"github.com/drover-dev/drover/plugins/dns/verify"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
)

func newProvider(t *testing.T, cfg *zonefile.Config, dir string) *zonefile.Provider {
	t.Helper()
	p, err := zonefile.New(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outside changes a set the way another tool would: a text edit of the file (under the same lock,
// as the package documents), without parsing it with miekg/dns or bumping the serial.
func outside(t *testing.T, path string, set dns.RecordSet) {
	t.Helper()
	unlock, err := flock.Lock(t.Context(), path+".lock", 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.EqualFold(f[0], set.Name) && strings.EqualFold(f[3], set.Type) {
			continue
		}
		out = append(out, line)
	}
	for _, v := range set.Values {
		out = append(out, fmt.Sprintf("%s %d IN %s %s ; changed by hand", set.Name, set.TTL, set.Type, v))
	}
	tmp := path + ".outside"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestContract runs the suite against a real NSD: the provider rewrites its zone file and reloads it
// with nsd-control.
func TestContract(t *testing.T) {
	srv := nsd.Start(t, "lab.example.")
	cfg := &zonefile.Config{Zone: srv.Zone, Path: srv.ZoneFile, Reload: srv.ReloadCommand()}
	var n atomic.Int64
	dnstest.Run(t, func(t *testing.T) dnstest.Fixture {
		return dnstest.Fixture{
			Provider: newProvider(t, cfg, ""),
			Prefix:   fmt.Sprintf("t%d", n.Add(1)),
			Reopen:   func(t *testing.T) dns.Provider { return newProvider(t, cfg, "") },
			Outside:  func(t *testing.T, set dns.RecordSet) { outside(t, srv.ZoneFile, set) },
		}
	}, dnstest.Options{Parallel: true})
}

// TestServedByNSD checks after each change that NSD itself answers with the new set, asked
// directly, and that the SOA serial it serves went up.
func TestServedByNSD(t *testing.T) {
	srv := nsd.Start(t, "lab.example.")
	p := newProvider(t, &zonefile.Config{Zone: srv.Zone, Path: srv.ZoneFile, Reload: srv.ReloadCommand()}, "")
	ctx := t.Context()
	var lastSerial uint32
	steps := []dns.RecordSet{
		{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1", "192.0.2.2"}},
		{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}},
		{Name: "www.lab.example.", Type: "A", TTL: 30, Values: []string{"192.0.2.3"}},
		{Name: "www.lab.example.", Type: "AAAA", TTL: 30, Values: []string{"2001:db8::1"}},
		{Name: "www.lab.example.", Type: "A", TTL: 30},
		{Name: "alias.lab.example.", Type: "CNAME", TTL: 30, Values: []string{"www.lab.example."}},
		{Name: "www.lab.example.", Type: "TXT", TTL: 30, Values: []string{`"blue green"`}},
	}
	for i, want := range steps {
		if err := p.ReplaceSet(ctx, want, nil); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := verify.WaitServed(wctx, []string{srv.Addr}, want, 50*time.Millisecond, nil)
		cancel()
		if err != nil {
			t.Fatalf("step %d: NSD does not serve %v: %v", i, want, err)
		}
		// WaitServed compares values; a change of TTL alone is seen here.
		for deadline := time.Now().Add(10 * time.Second); ; {
			got, err := verify.Served(ctx, srv.Addr, want.Name, want.Type)
			if err != nil {
				t.Fatal(err)
			}
			if want.Empty() || got.TTL == want.TTL {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d: NSD serves %v, want %v", i, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		serial := soaSerial(t, srv.Addr, srv.Zone)
		if serial <= lastSerial {
			t.Errorf("step %d: NSD serves serial %d after %d", i, serial, lastSerial)
		}
		lastSerial = serial
	}
	// Nothing to change: the file and its serial stay.
	before, _ := os.ReadFile(srv.ZoneFile)
	if err := p.ReplaceSet(ctx, steps[len(steps)-1], nil); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(srv.ZoneFile); string(after) != string(before) {
		t.Errorf("an idempotent ReplaceSet rewrote the file:\n%s\nto\n%s", before, after)
	}
}

func soaSerial(t *testing.T, addr, zone string) uint32 {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(zone, mdns.TypeSOA)
	m.RecursionDesired = false
	r, _, err := (&mdns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*mdns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in %v", r)
	return 0
}

const testZone = `$ORIGIN lab.example.
$TTL 3600
; the lab zone
@	SOA	ns1 hostmaster 1 3600 600 86400 60
@	NS	ns1
ns1	A	127.0.0.1 ; the name server
@	MX	10 mail
www	60	A	192.0.2.1 ; blue
www	60	A	192.0.2.2
mail	A	192.0.2.25
`

func writeZone(t *testing.T, text string, mode os.FileMode) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "lab.example.zone")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func serialOf(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := mdns.NewZoneParser(f, "lab.example.", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if soa, ok := rr.(*mdns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in %s: %v", path, zp.Err())
	return 0
}

func TestRewrite(t *testing.T) {
	dir, path := writeZone(t, testZone, 0o640)
	p := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: "lab.example.zone"}, dir)
	if p.Path() != path {
		t.Fatalf("Path() = %q, want %q", p.Path(), path)
	}
	ctx := t.Context()
	got, err := p.Set(ctx, "WWW.lab.example", "a")
	if err != nil {
		t.Fatal(err)
	}
	want := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.1", "192.0.2.2"}}
	if !got.Equal(want) {
		t.Fatalf("Set = %v, want %v", got, want)
	}
	green := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}}
	if err := p.ReplaceSet(ctx, green, &got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, s := range []string{"MX\t10 mail.lab.example.", "mail.lab.example.\t3600\tIN\tA\t192.0.2.25", "; the name server", "192.0.2.3"} {
		if !strings.Contains(text, s) {
			t.Errorf("rewritten file lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, "192.0.2.1") {
		t.Errorf("rewritten file still has the old set:\n%s", text)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite: %v %v, want 0640", fi.Mode(), err)
	}
	if s, want := serialOf(t, path), zonefile.NextSerial(1, time.Now()); s != want {
		t.Errorf("serial %d after one change, want %d", s, want)
	}
	// No temporary files are left.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "lab.example.zone" && e.Name() != "lab.example.zone.lock" {
			t.Errorf("left in the zone's directory: %s", e.Name())
		}
	}
	// A stale precondition changes nothing.
	before := text
	err = p.ReplaceSet(ctx, want, &want)
	if !errors.Is(err, dns.ErrConflict) {
		t.Fatalf("ReplaceSet with a stale precondition: %v, want ErrConflict", err)
	}
	if b, _ := os.ReadFile(path); string(b) != before {
		t.Errorf("a failed precondition changed the file")
	}
	// The TTL is part of the precondition here.
	stale := green
	stale.TTL = 300
	if err := p.ReplaceSet(ctx, want, &stale); !errors.Is(err, dns.ErrConflict) {
		t.Fatalf("ReplaceSet with a precondition of another TTL: %v, want ErrConflict", err)
	}
}

func TestNextSerial(t *testing.T) {
	day := time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ old, want uint32 }{
		{1, 2026112300},
		{2026112200, 2026112300},
		{2026112300, 2026112301},
		{2026112399, 2026112400},
		{3000000000, 3000000001},
		{4294967295, 0},
	} {
		if got := zonefile.NextSerial(tt.old, day); got != tt.want {
			t.Errorf("NextSerial(%d) = %d, want %d", tt.old, got, tt.want)
		}
	}
}

func TestReloadFails(t *testing.T) {
	dir, path := writeZone(t, testZone, 0o644)
	bad := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path,
		Reload: []string{"sh", "-c", "echo reading zone; echo 'error: zone lab.example. is broken' >&2; exit 3"}}, "")
	green := dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}}
	err := bad.ReplaceSet(t.Context(), green, nil)
	t.Logf("ReplaceSet: %v", err)
	for _, s := range []string{"dns/zonefile: ", "exit status 3", "zone lab.example. is broken", "in place", path} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
	// The new file stays.
	if got, err := bad.Set(t.Context(), green.Name, green.Type); err != nil || !got.Equal(green) {
		t.Fatalf("Set after a failed reload = %v, %v; want %v", got, err, green)
	}
	serial := serialOf(t, path)
	// Retrying with a working reload runs the reload though the file needs no change.
	marker := filepath.Join(dir, "reloaded")
	good := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path, Reload: []string{"touch", marker}}, "")
	if err := good.ReplaceSet(t.Context(), green, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the retry did not run the reload: %v", err)
	}
	if s := serialOf(t, path); s != serial {
		t.Errorf("the retry changed the serial from %d to %d", serial, s)
	}
	// A reload command that does not exist is named.
	missing := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path, Reload: []string{"/nonexistent/nsd-control", "reload"}}, "")
	if err := missing.ReplaceSet(t.Context(), green, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/nsd-control") {
		t.Fatalf("ReplaceSet with a missing reload command: %v", err)
	}
}

func TestReloadCanceled(t *testing.T) {
	_, path := writeZone(t, testZone, 0o644)
	p := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path, Reload: []string{"sleep", "30"}}, "")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.ReplaceSet(ctx, dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReplaceSet with a hanging reload: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("ReplaceSet returned after %v", d)
	}
}

func TestLockWaitsForContext(t *testing.T) {
	_, path := writeZone(t, testZone, 0o644)
	p := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path}, "")
	unlock, err := flock.Lock(t.Context(), path+".lock", 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = p.ReplaceSet(ctx, dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReplaceSet while another holds the lock: %v, want DeadlineExceeded", err)
	}
}

func TestBadFiles(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"include", testZone + "$INCLUDE other.zone\n", "$INCLUDE"},
		{"no soa", "$ORIGIN lab.example.\nwww 60 A 192.0.2.1\n", "no SOA"},
		{"other zone", "$ORIGIN other.example.\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n", `"other.example."`},
		{"syntax", testZone + "www 60 A not-an-address\n", "not-an-address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, path := writeZone(t, tt.text, 0o644)
			p := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: path}, "")
			err := p.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 60, Values: []string{"192.0.2.3"}}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dns/zonefile: ") {
				t.Fatalf("ReplaceSet: %v, want an error mentioning %s", err, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.text {
				t.Fatalf("the file changed")
			}
		})
	}
	p := newProvider(t, &zonefile.Config{Zone: "lab.example.", Path: "/nonexistent/lab.example.zone"}, "")
	if _, err := p.Set(t.Context(), "www.lab.example.", "A"); err == nil || !strings.Contains(err.Error(), "/nonexistent/lab.example.zone") {
		t.Fatalf("Set of a missing file: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  zonefile.Config
		want string
	}{
		{zonefile.Config{Zone: "lab.example", Path: "z"}, "zone"},
		{zonefile.Config{Zone: "lab.example.", Path: ""}, "path"},
		{zonefile.Config{Zone: "lab.example.", Path: "z", Reload: []string{""}}, "reload"},
		{zonefile.Config{Zone: "lab.example.", Path: "z", Nameservers: []string{"ns1"}}, `"ns1"`},
	} {
		if _, err := zonefile.New(&tt.cfg, t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): %v, want an error about %s", tt.cfg, err, tt.want)
		}
	}
}
