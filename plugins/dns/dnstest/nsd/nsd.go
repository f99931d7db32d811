// Package nsd starts a real NSD (nsd from the Debian package nsd) for tests: one zone from a zone
// file on 127.0.0.1, controlled through nsd-control over a unix socket, stopped by PID when the test
// ends.
//
//	srv := nsd.Start(t, "lab.example.")
//	cfg := &zonefile.Config{Zone: srv.Zone, Path: srv.ZoneFile, Reload: srv.ReloadCommand()}
//
// A missing nsd or nsd-control fails the test (it does not skip): CI installs nsd.
package nsd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/dnstest/internal/daemon"
)

// Server is a running nsd serving one zone from ZoneFile.
type Server struct {
	// Addr is where it answers queries, over UDP and TCP: "127.0.0.1:PORT".
	Addr string
	// Zone is the zone's apex, fully qualified and lower case.
	Zone string
	// ZoneFile is the zone's file; Conf is nsd.conf; Dir holds both and nsd's run files.
	ZoneFile string
	Conf     string
	Dir      string
	// PID is the main nsd process's ID (it forks its server processes; Stop ends them too).
	PID int

	control string // nsd-control's path
	proc    *daemon.Process
}

// Start starts nsd for zone in t.TempDir(), listening on a free port of 127.0.0.1, with a zone file
// holding a SOA (serial 1), "NS ns1", "ns1 A 127.0.0.1" and records (zone file lines relative to
// the zone's origin). It returns once nsd answers the zone's SOA over UDP and TCP, and registers a
// cleanup that stops it by PID whether the test passed or not (logging the end of nsd's log if it
// failed). A missing nsd or a server that does not come up fails the test.
func Start(t testing.TB, zone string, records ...string) *Server {
	t.Helper()
	bin, err := daemon.LookPath("nsd", "nsd")
	if err != nil {
		t.Fatalf("nsd: %v", err)
	}
	control, err := daemon.LookPath("nsd-control", "nsd")
	if err != nil {
		t.Fatalf("nsd: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		Zone:     dns.Fqdn(strings.ToLower(zone)),
		ZoneFile: filepath.Join(dir, "zone.db"),
		Conf:     filepath.Join(dir, "nsd.conf"),
		Dir:      dir,
		control:  control,
	}
	if err := os.WriteFile(s.ZoneFile, []byte(daemon.ZoneText(s.Zone, records)), 0o644); err != nil {
		t.Fatalf("nsd: %v", err)
	}
	s.proc, s.Addr, err = daemon.Serve("nsd", dir, s.Zone, func(port int) ([]string, error) {
		return []string{bin, "-d", "-c", s.Conf}, os.WriteFile(s.Conf, []byte(s.config(port)), 0o644)
	})
	if err != nil {
		t.Fatalf("nsd: %v", err)
	}
	s.PID = s.proc.PID()
	s.proc.StopAtCleanup(t, s.Addr)
	return s
}

// ReloadCommand is the argument list that makes this nsd reload the zone's file.
func (s *Server) ReloadCommand() []string {
	return []string{s.control, "-c", s.Conf, "reload", s.Zone}
}

// Stop stops nsd (SIGTERM, then SIGKILL to its process group after 5 seconds) and waits for the
// main process to exit. It is safe to call more than once; the test's cleanup calls it too.
func (s *Server) Stop() { s.proc.Stop(5 * time.Second) }

// Log returns what nsd logged so far.
func (s *Server) Log() string { return s.proc.Log() }

func (s *Server) config(port int) string {
	return fmt.Sprintf(`server:
    ip-address: 127.0.0.1@%[1]d
    username: ""
    chroot: ""
    zonesdir: %[2]q
    pidfile: %[3]q
    xfrdfile: %[4]q
    zonelistfile: %[5]q
    database: ""
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: yes
    control-interface: %[6]q
zone:
    name: %[7]s
    zonefile: %[8]q
`, port, s.Dir, filepath.Join(s.Dir, "nsd.pid"), filepath.Join(s.Dir, "xfrd.state"),
		filepath.Join(s.Dir, "zone.list"), filepath.Join(s.Dir, "nsd.sock"), s.Zone, s.ZoneFile)
}
