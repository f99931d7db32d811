package zonefile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/internal/flock"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/internal/rrconv"
)

var _ dns.Provider = (*Provider)(nil)

const component = "dns/zonefile"

// lockPoll is how often a ReplaceSet waiting for the file's lock tries again.
const lockPoll = 20 * time.Millisecond

// reloadWaitDelay bounds how long a reload command that ctx ended (or that exited leaving a child
// holding its output) is waited for.
const reloadWaitDelay = 5 * time.Second

// Provider changes one zone by rewriting its zone file and running a reload command (for NSD:
// nsd-control reload ZONE), for servers without dynamic updates. It changes the record types A,
// AAAA, CNAME and TXT and leaves every other record of the file as it is.
//
// ReplaceSet holds an exclusive lock on PATH.lock (package internal/flock) from reading the file
// to the end of the reload, so ReplaceSets from any number of goroutines and processes apply one
// after the other; another tool that edits the file can take the same lock. The file is replaced
// atomically (a temporary file in the same directory, fsynced, renamed), so a reader (Set, the
// server) sees the old file or the new one, never a part. Set reads the file, not the server: what
// the server serves is checked with package dns/verify.
//
// A rewritten file holds the zone's records one per line with fully qualified names, each with the
// comment that followed it on its line; other comments, blank lines and directives ($TTL, $ORIGIN)
// are not kept. $INCLUDE is refused.
type Provider struct {
	zone   string
	path   string
	lock   string
	reload []string
	// verifyAt are the block's nameservers (VerifyAt).
	verifyAt []string
}

// New returns a provider for cfg; a relative cfg.Path is relative to dir (the fleet file's
// directory). It checks cfg but not the file, which ReplaceSet and Set read each time.
func New(cfg *Config, dir string) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("dns/zonefile: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dns/zonefile: %w", err)
	}
	path := cfg.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("dns/zonefile: zone file %q: %w", cfg.Path, err)
	}
	return &Provider{
		zone:     dns.Fqdn(strings.ToLower(cfg.Zone)),
		path:     path,
		lock:     path + ".lock",
		reload:   slices.Clone(cfg.Reload),
		verifyAt: slices.Clone(cfg.Nameservers),
	}, nil
}

// VerifyAt implements dns.Verified: the block's nameservers; none means the zone's NS records.
func (p *Provider) VerifyAt() []string { return slices.Clone(p.verifyAt) }

// Zone returns the zone's apex, fully qualified and lower case.
func (p *Provider) Zone() string { return p.zone }

// Path returns the zone file's absolute path.
func (p *Provider) Path() string { return p.path }

// Set implements dns.Provider: it reads the set from the zone file. It changes nothing and takes
// no lock (the file is only ever replaced whole).
func (p *Provider) Set(ctx context.Context, name, typ string) (dns.RecordSet, error) {
	if err := ctx.Err(); err != nil {
		return dns.RecordSet{}, fmt.Errorf("dns/zonefile: reading %s: %w", p.path, err)
	}
	k, err := rrconv.Check(component, p.zone, name, typ)
	if err != nil {
		return dns.RecordSet{}, err
	}
	z, err := p.read()
	if err != nil {
		return dns.RecordSet{}, err
	}
	return rrconv.Set(k, z.rrs()), nil
}

// ReplaceSet implements dns.Provider: under the file's lock it reads the zone file, checks prev
// (values and TTL), replaces the set, raises the SOA serial (to today's YYYYMMDD00 or by one,
// whichever is larger), writes the file atomically and runs the reload command.
//
// When the file already holds want, the file is left alone but the reload command still runs, so
// a call that failed at the reload is repaired by calling it again. If the reload fails, the new
// file stays in place (a later reload or a server restart serves it) and the error says so, with
// the command's exit status and the last lines of its output. A failure before the rename (parse,
// precondition, write) leaves the old file and no temporary file behind.
func (p *Provider) ReplaceSet(ctx context.Context, want dns.RecordSet, prev *dns.RecordSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dns/zonefile: changing %s: %w", p.path, err)
	}
	k, err := rrconv.Check(component, p.zone, want.Name, want.Type)
	if err != nil {
		return err
	}
	want = want.Normalize()
	wantRRs, err := rrconv.RRs(component, k, want.TTL, want.Values)
	if err != nil {
		return err
	}
	want.Values = rrconv.Values(wantRRs)
	var prevSet *dns.RecordSet
	if prev != nil {
		pk, err := rrconv.Check(component, p.zone, prev.Name, prev.Type)
		if err != nil {
			return fmt.Errorf("%w (in the precondition)", err)
		}
		if pk != k {
			return fmt.Errorf("dns/zonefile: the precondition is about %s %s, the change about %s %s", pk.Name, pk.Type, k.Name, k.Type)
		}
		vals, err := rrconv.Canonical(component, k, prev.Values)
		if err != nil {
			return fmt.Errorf("%w (in the precondition)", err)
		}
		prevSet = &dns.RecordSet{Name: k.Name, Type: k.Type, TTL: prev.TTL, Values: vals}
	}

	unlock, err := flock.Lock(ctx, p.lock, lockPoll)
	if err != nil {
		return fmt.Errorf("dns/zonefile: %w", err)
	}
	defer unlock()

	z, err := p.read()
	if err != nil {
		return err
	}
	cur := rrconv.Set(k, z.rrs())
	if prevSet != nil && !sameSet(cur, *prevSet) {
		return fmt.Errorf("dns/zonefile: %s %s in %s is %v, not %v: %w", k.Name, k.Type, p.path, cur, *prevSet, dns.ErrConflict)
	}
	if !sameSet(cur, want) {
		z.replace(k, wantRRs)
		if err := z.bumpSerial(time.Now()); err != nil {
			return err
		}
		if err := p.write(z); err != nil {
			return err
		}
	}
	return p.runReload(ctx)
}

// sameSet compares two sets by values and, when they have records, TTL.
func sameSet(a, b dns.RecordSet) bool {
	if len(a.Values) == 0 || len(b.Values) == 0 {
		return len(a.Values) == len(b.Values)
	}
	return a.TTL == b.TTL && slices.Equal(a.Values, b.Values)
}

// zoneData is a parsed zone file: its records in file order, each with its line's comment.
type zoneData struct {
	entries []entry
	mode    os.FileMode
	uid     int
	gid     int
}

type entry struct {
	rr      mdns.RR
	comment string
}

func (z *zoneData) rrs() []mdns.RR {
	rrs := make([]mdns.RR, len(z.entries))
	for i, e := range z.entries {
		rrs[i] = e.rr
	}
	return rrs
}

// replace puts rrs where the set of k was (at the end of the file if it had none).
func (z *zoneData) replace(k rrconv.Key, rrs []mdns.RR) {
	var out []entry
	at := -1
	for _, e := range z.entries {
		h := e.rr.Header()
		if h.Rrtype == k.RRType && strings.EqualFold(h.Name, k.Name) {
			if at < 0 {
				at = len(out)
			}
			continue
		}
		out = append(out, e)
	}
	if at < 0 {
		at = len(out)
	}
	add := make([]entry, len(rrs))
	for i, rr := range rrs {
		add[i] = entry{rr: rr}
	}
	z.entries = slices.Insert(out, at, add...)
}

// bumpSerial raises the SOA serial to today's YYYYMMDD00 (UTC) or by one, whichever is larger.
func (z *zoneData) bumpSerial(now time.Time) error {
	for _, e := range z.entries {
		if soa, ok := e.rr.(*mdns.SOA); ok {
			soa.Serial = NextSerial(soa.Serial, now)
			return nil
		}
	}
	return errors.New("dns/zonefile: the zone file has no SOA record")
}

// NextSerial returns the serial after old: today's date as YYYYMMDD00 (UTC) when that is larger,
// else old+1 (which wraps as RFC 1982 serial arithmetic allows).
func NextSerial(old uint32, now time.Time) uint32 {
	y, m, d := now.UTC().Date()
	date := uint32(y*1000000 + int(m)*10000 + d*100)
	if date > old {
		return date
	}
	return old + 1
}

// read parses the zone file.
func (p *Provider) read() (*zoneData, error) {
	f, err := os.Open(p.path)
	if err != nil {
		return nil, fmt.Errorf("dns/zonefile: reading zone %s: %w", p.zone, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dns/zonefile: reading zone %s: %w", p.zone, err)
	}
	z := &zoneData{mode: fi.Mode().Perm(), uid: -1, gid: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		z.uid, z.gid = int(st.Uid), int(st.Gid)
	}
	zp := mdns.NewZoneParser(f, p.zone, p.path)
	soa := false
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if s, isSOA := rr.(*mdns.SOA); isSOA {
			if !strings.EqualFold(s.Hdr.Name, p.zone) {
				return nil, fmt.Errorf("dns/zonefile: %s has the SOA of %q, not of zone %q", p.path, s.Hdr.Name, p.zone)
			}
			soa = true
		}
		z.entries = append(z.entries, entry{rr: rr, comment: zp.Comment()})
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dns/zonefile: parsing zone file: %w", err)
	}
	if !soa {
		return nil, fmt.Errorf("dns/zonefile: %s has no SOA record for %q", p.path, p.zone)
	}
	return z, nil
}

// write replaces the zone file atomically: a temporary file in the same directory with the old
// file's mode (and owner, where allowed), fsynced, renamed over it, and the directory fsynced.
func (p *Provider) write(z *zoneData) (err error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "; zone %s, rewritten by drover (dns/zonefile)\n$ORIGIN %s\n", p.zone, p.zone)
	for _, e := range z.entries {
		b.WriteString(e.rr.String())
		if e.comment != "" {
			b.WriteString(" " + e.comment)
		}
		b.WriteByte('\n')
	}
	dir := filepath.Dir(p.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("dns/zonefile: writing %s: %w", p.path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b.Bytes()); err != nil {
		return fmt.Errorf("dns/zonefile: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(z.mode); err != nil {
		return fmt.Errorf("dns/zonefile: writing %s: %w", tmp.Name(), err)
	}
	if z.uid >= 0 && (z.uid != os.Geteuid() || z.gid != os.Getegid()) {
		// Keep the server's ownership when we may (as root); otherwise the mode has to do.
		_ = tmp.Chown(z.uid, z.gid)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("dns/zonefile: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("dns/zonefile: writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		return fmt.Errorf("dns/zonefile: replacing %s: %w", p.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// runReload runs the reload command, if any.
func (p *Provider) runReload(ctx context.Context) error {
	if len(p.reload) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, p.reload[0], p.reload[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = reloadWaitDelay
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	tail := lastLines(out.Bytes(), 5)
	if tail == "" {
		tail = "(no output)"
	}
	return fmt.Errorf("dns/zonefile: reload command %q failed: %w; the new zone file %s is in place, and running the same ReplaceSet again retries the reload; its output ends: %s",
		p.reload, err, p.path, tail)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
