// Package knot starts a real Knot DNS server (knotd from the Debian package knot) for tests: one
// zone on 127.0.0.1, updatable by RFC 2136 with a TSIG key, stopped by PID when the test ends.
//
//	srv := knot.Start(t, "lab.example.")
//	cfg := &rfc2136.Config{Server: srv.Addr, Zone: srv.Zone, KeyName: srv.KeyName,
//		Algorithm: srv.Algorithm, Secret: srv.Secret}
//
// A missing knotd fails the test (it does not skip): CI installs knot.
package knot

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest/internal/daemon"
)

// Options change the server Start makes.
type Options struct {
	// Algorithm is the TSIG key's algorithm: "hmac-sha256" (the default) or "hmac-sha512".
	Algorithm string
	// Records are extra zone file lines, relative to the zone's origin ("www 60 A 192.0.2.1").
	// The zone always has a SOA (serial 1), "NS ns1" and "ns1 A 127.0.0.1".
	Records []string
}

// Server is a running knotd serving one zone.
type Server struct {
	// Addr is where it answers queries and takes updates, over UDP and TCP: "127.0.0.1:PORT".
	Addr string
	// Zone is the zone's apex, fully qualified and lower case.
	Zone string
	// KeyName, Secret (base64) and Algorithm ("hmac-sha256") are the TSIG key the zone's ACL
	// allows updates with.
	KeyName   string
	Secret    string
	Algorithm string
	// Dir holds the configuration, zone file, journal and run files.
	Dir string
	// PID is knotd's process ID.
	PID int

	proc *daemon.Process
}

// Start starts knotd for zone with the default Options; see StartWith.
func Start(t testing.TB, zone string) *Server {
	t.Helper()
	return StartWith(t, zone, Options{})
}

// StartWith starts knotd for zone in t.TempDir(), listening on a free port of 127.0.0.1, and
// returns once it answers the zone's SOA over UDP and TCP. It registers a cleanup that stops the
// server by PID whether the test passed or not (and logs the end of knotd's log if it failed). A
// missing knotd or a server that does not come up fails the test.
func StartWith(t testing.TB, zone string, opts Options) *Server {
	t.Helper()
	bin, err := daemon.LookPath("knotd", "knot")
	if err != nil {
		t.Fatalf("knot: %v", err)
	}
	if opts.Algorithm == "" {
		opts.Algorithm = "hmac-sha256"
	}
	if opts.Algorithm != "hmac-sha256" && opts.Algorithm != "hmac-sha512" {
		t.Fatalf("knot: algorithm %q: want hmac-sha256 or hmac-sha512", opts.Algorithm)
	}
	secret := make([]byte, 32)
	if opts.Algorithm == "hmac-sha512" {
		secret = make([]byte, 64)
	}
	rand.Read(secret)
	s := &Server{
		Zone:      dns.Fqdn(strings.ToLower(zone)),
		KeyName:   "drover-test.",
		Secret:    base64.StdEncoding.EncodeToString(secret),
		Algorithm: opts.Algorithm,
		Dir:       t.TempDir(),
	}
	zoneFile := filepath.Join(s.Dir, "zone.db")
	if err := os.WriteFile(zoneFile, []byte(daemon.ZoneText(s.Zone, opts.Records)), 0o644); err != nil {
		t.Fatalf("knot: %v", err)
	}
	conf := filepath.Join(s.Dir, "knot.conf")
	s.proc, s.Addr, err = daemon.Serve("knotd", s.Dir, s.Zone, func(port int) ([]string, error) {
		return []string{bin, "-c", conf}, os.WriteFile(conf, []byte(s.config(port, zoneFile)), 0o644)
	})
	if err != nil {
		t.Fatalf("knot: %v", err)
	}
	s.PID = s.proc.PID()
	s.proc.StopAtCleanup(t, s.Addr)
	return s
}

// Stop stops knotd (SIGTERM, then SIGKILL after 5 seconds) and waits for it to exit. It is safe to
// call more than once; the test's cleanup calls it too.
func (s *Server) Stop() { s.proc.Stop(5 * time.Second) }

// Log returns what knotd logged so far.
func (s *Server) Log() string { return s.proc.Log() }

// Replace makes the set exactly set's records with one unconditional TSIG-signed update: a plain
// RemoveRRset and Insert, no prerequisites. It is the "someone else changed it" path of tests,
// independent of the rfc2136 provider. An empty set removes every record of its name and type. A
// failure fails the test, so call it from the test's goroutine; elsewhere use Change.
func (s *Server) Replace(t testing.TB, set dns.RecordSet) {
	t.Helper()
	if err := s.Change(context.Background(), set); err != nil {
		t.Fatal(err)
	}
}

// Change is Replace returning its error, for goroutines other than the test's.
func (s *Server) Change(ctx context.Context, set dns.RecordSet) error {
	set = set.Normalize()
	m := new(mdns.Msg)
	m.SetUpdate(s.Zone)
	typ, ok := mdns.StringToType[set.Type]
	if !ok {
		return fmt.Errorf("knot: unknown type %q", set.Type)
	}
	m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: set.Name, Rrtype: typ, Class: mdns.ClassINET}}})
	var rrs []mdns.RR
	for _, v := range set.Values {
		rr, err := mdns.NewRR(fmt.Sprintf("%s %d IN %s %s", set.Name, set.TTL, set.Type, v))
		if err != nil {
			return fmt.Errorf("knot: record %q: %w", v, err)
		}
		rrs = append(rrs, rr)
	}
	m.Insert(rrs)
	m.SetTsig(s.KeyName, mdns.Fqdn(s.Algorithm), 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{s.KeyName: s.Secret}}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr)
	if err != nil {
		return fmt.Errorf("knot: update at %s: %w", s.Addr, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return fmt.Errorf("knot: update at %s: rcode %s", s.Addr, mdns.RcodeToString[r.Rcode])
	}
	return nil
}

// Query asks the server for name and typ (not signed, over TCP, no recursion) and returns the reply.
func (s *Server) Query(t testing.TB, name, typ string) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(dns.Fqdn(name), mdns.StringToType[strings.ToUpper(typ)])
	m.RecursionDesired = false
	c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("knot: query %s %s at %s: %v", name, typ, s.Addr, err)
	}
	return r
}

func (s *Server) config(port int, zoneFile string) string {
	return fmt.Sprintf(`server:
    rundir: %[1]q
    listen: 127.0.0.1@%[2]d
    pidfile: %[3]q
control:
    listen: %[4]q
log:
  - target: stderr
    any: info
database:
    storage: %[1]q
key:
  - id: %[5]s
    algorithm: %[6]s
    secret: %[7]s
acl:
  - id: update
    key: %[5]s
    action: update
template:
  - id: default
    storage: %[1]q
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
zone:
  - domain: %[8]s
    file: %[9]q
    acl: update
`, s.Dir, port, filepath.Join(s.Dir, "knot.pid"), filepath.Join(s.Dir, "knot.sock"),
		s.KeyName, s.Algorithm, s.Secret, s.Zone, zoneFile)
}
