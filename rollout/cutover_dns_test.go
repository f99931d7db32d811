package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/dns"
	dnsmem "github.com/drover-dev/drover/plugins/dns/memory"
	"github.com/drover-dev/drover/rollout"
)

// dnsLab is the lab with web cut over through DNS: www.lab.example in an in-memory zone, TTL 1 s so
// the drains are short, and a hand-made record that was there before drover.
func dnsLab(t *testing.T) (*lab, *dnsmem.Zone, func(...func(*rollout.Options)) *rollout.Controller) {
	t.Helper()
	l := newLab(t, webRole(func(d *fleet.Deploy) {
		d.Cutover = fleet.Cutover{Type: "dns", DNS: "home", Name: "www", TTL: 1}
	}))
	zone := dnsmem.New("lab.example.")
	if err := zone.ReplaceSet(t.Context(), dns.RecordSet{Name: "www.lab.example.", Type: "A", TTL: 2, Values: []string{"192.0.2.10"}}, nil); err != nil {
		t.Fatal(err)
	}
	controller := func(mod ...func(*rollout.Options)) *rollout.Controller {
		return l.controller(append([]func(*rollout.Options){func(o *rollout.Options) {
			o.DNS = func(_ context.Context, name string) (dns.Provider, error) {
				if name != "home" {
					return nil, fmt.Errorf("no dns %q", name)
				}
				return zone, nil
			}
		}}, mod...)...)
	}
	return l, zone, controller
}

// dnsDeployed is dnsLab with a first image of web rolled out through DNS; blue is the set it serves.
func dnsDeployed(t *testing.T) (*lab, *dnsmem.Zone, func(...func(*rollout.Options)) *rollout.Controller, *rollout.Controller, dns.RecordSet) {
	t.Helper()
	l, zone, controller := dnsLab(t)
	l.build("web")
	c := controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	return l, zone, controller, c, wwwA(t, zone)
}

func wwwA(t *testing.T, z *dnsmem.Zone) dns.RecordSet {
	t.Helper()
	s, err := z.Set(t.Context(), "www.lab.example.", "A")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addrsOf(l *lab, img string) []string {
	var out []string
	for _, in := range l.running("web")[img] {
		out = append(out, in.Address.String())
	}
	slices.Sort(out)
	return out
}

func TestDNSCutoverSetsGreenKeepsTheOldSetAndRollbackRestoresIt(t *testing.T) {
	l, zone, controller := dnsLab(t)
	img1 := l.build("web")
	c := controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if got := wwwA(t, zone); !slices.Equal(got.Values, []string{"192.0.2.10"}) {
		t.Fatalf("www changed before promote: %v", got)
	}
	start := time.Now()
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("promote took %s", took)
	}
	got := wwwA(t, zone)
	if want := addrsOf(l, img1); !slices.Equal(got.Values, want) || got.TTL != 1 {
		t.Fatalf("www after the first cutover = %v, want %v with ttl 1", got, want)
	}
	if rec.Cutover.Snapshot == nil || !strings.Contains(string(rec.Cutover.Snapshot.Data), "192.0.2.10") {
		t.Fatalf("the record kept no snapshot of the set before the cutover: %+v", rec.Cutover)
	}
	if time.Duration(rec.Cutover.Snapshot.Drain) != 2*time.Second {
		t.Errorf("snapshot drain = %s, want the old TTL 2s", rec.Cutover.Snapshot.Drain)
	}

	// A second rollout moves www to green 2; a rollback inside keep_old restores exactly the set
	// green 1 served (kept in the record), then green 2 is destroyed after its TTL.
	img2 := l.build("web")
	rec, err = c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)
	if got := wwwA(t, zone); !slices.Equal(got.Values, addrsOf(l, img2)) {
		t.Fatalf("www after the second cutover = %v, want green 2 %v", got, addrsOf(l, img2))
	}
	before := zone.Changes()
	rec, err = c.Rollback(t.Context(), "web")
	mustRecord(t, rec, err, rollout.RolledBack)
	if got := wwwA(t, zone); !slices.Equal(got.Values, addrsOf(l, img1)) || got.TTL != 1 {
		t.Fatalf("www after rollback = %v, want blue %v", got, addrsOf(l, img1))
	}
	if n := len(l.running("web")[img2]); n != 0 {
		t.Errorf("%d green instance(s) left after rollback", n)
	}
	// Rolling back again changes nothing.
	if _, err := c.Rollback(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	if n := zone.Changes() - before; n != 1 {
		t.Errorf("the zone changed %d times for one rollback, want 1", n)
	}
}

func TestDNSRollbackAfterACrashRestoresTheSavedSet(t *testing.T) {
	l, zone, controller, c, blue := dnsDeployed(t)
	var (
		rec *rollout.Record
		err error
	)

	// Someone gives the name a longer TTL by hand; drover's rollback must restore that set, not
	// one recomputed from blue's addresses.
	blue.TTL = 2
	if err := zone.ReplaceSet(t.Context(), blue, nil); err != nil {
		t.Fatal(err)
	}
	img2 := l.build("web")
	rec, err = c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)

	host, _ := hostname()
	crashing := controller(func(o *rollout.Options) {
		o.CrashAfter, o.Owner = rollout.RolledBack, "crashed@"+host+" pid "+deadPID(t)
	})
	if _, err := crashing.Rollback(t.Context(), "web"); !errors.Is(err, rollout.ErrCrashed) {
		t.Fatalf("rollback with the crash hook: %v, want ErrCrashed", err)
	}
	if got := wwwA(t, zone); !slices.Equal(got.Values, addrsOf(l, img2)) {
		t.Fatalf("the crash came before the cutover moved, but www = %v", got)
	}
	if _, err := controller().Rollback(t.Context(), "web"); err != nil {
		t.Fatalf("rollback after the crash: %v", err)
	}
	if got := wwwA(t, zone); !got.Equal(blue) {
		t.Fatalf("www after the resumed rollback = %v, want exactly the saved %v", got, blue)
	}
	if n := len(l.running("web")[img2]); n != 0 {
		t.Errorf("%d green instance(s) left", n)
	}
}

func TestDNSWatchFailureRestoresBlue(t *testing.T) {
	l, zone, _, c, blue := dnsDeployed(t)
	var (
		rec *rollout.Record
		err error
	)

	img2 := l.build("web")
	rec, err = c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	l.onEvent = func(e rollout.Event) {
		if e.Kind == "transition" && e.State == rollout.Draining {
			l.setHealthy(img2, false)
		}
	}
	rec, err = c.Promote(t.Context(), "web")
	if rec == nil || rec.State != rollout.RolledBack || err == nil {
		t.Fatalf("promote of a green that turns unhealthy: %+v, %v; want rolled back", rec, err)
	}
	if got := wwwA(t, zone); !got.Equal(blue) {
		t.Fatalf("www after the watch rolled back = %v, want %v", got, blue)
	}
}

func TestDNSPlanSaysWhatTheCutoverDoes(t *testing.T) {
	l, _, controller := dnsLab(t)
	l.build("web")
	p, err := controller().Plan(t.Context(), []string{"web"}, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{`set www A/AAAA in dns "home"`, "every authoritative server", "old records' TTL"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
}

// An ip cutover with dns and name publishes the failover address under the name: written once,
// verified at every cutover.
func TestIPCutoverPublishesTheFailoverAddress(t *testing.T) {
	l := newLab(t, webRole(func(d *fleet.Deploy) {
		d.Cutover = fleet.Cutover{Type: "ip", IP: "front", DNS: "home", Name: "www", TTL: 60}
	}))
	zone := dnsmem.New("lab.example.")
	c := l.controller(func(o *rollout.Options) {
		o.DNS = func(context.Context, string) (dns.Provider, error) { return zone, nil }
	})
	for range 2 {
		l.build("web")
		rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
		mustRecord(t, rec, err, rollout.Ready)
		rec, err = c.Promote(t.Context(), "web")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rec.Cutover.Note, "published") {
			t.Errorf("cutover note %q does not mention the published name", rec.Cutover.Note)
		}
		got := wwwA(t, zone)
		if !slices.Equal(got.Values, []string{"127.0.0.100"}) || got.TTL != 60 {
			t.Fatalf("www = %v, want the failover address with ttl 60", got)
		}
	}
	if n := zone.Changes(); n != 1 {
		t.Errorf("the zone changed %d times over two rollouts, want 1", n)
	}
}
