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
	"github.com/drover-dev/drover/rollout"
)

// command is one drover command of a scenario, as the CLI would run it.
type command struct {
	name string
	run  func(ctx context.Context, l *lab, c *rollout.Controller) (*rollout.Record, error)
}

var (
	cmdStart = command{"start", func(ctx context.Context, _ *lab, c *rollout.Controller) (*rollout.Record, error) {
		return c.Start(ctx, "web", rollout.StartOptions{})
	}}
	cmdPromote = command{"promote", func(ctx context.Context, _ *lab, c *rollout.Controller) (*rollout.Record, error) {
		return c.Promote(ctx, "web")
	}}
	cmdRollback = command{"rollback", func(ctx context.Context, _ *lab, c *rollout.Controller) (*rollout.Record, error) {
		return c.Rollback(ctx, "web")
	}}
	cmdAbort = command{"abort", func(ctx context.Context, _ *lab, c *rollout.Controller) (*rollout.Record, error) {
		return c.Abort(ctx, "web")
	}}
	// cmdLater is a Tick after keep_old has passed (the clock moves on each run, as it would).
	cmdLater = command{"tick+16m", func(ctx context.Context, l *lab, c *rollout.Controller) (*rollout.Record, error) {
		l.clock.Advance(16 * time.Minute)
		return c.Tick(ctx, "web")
	}}
)

// scenario is a lab prepared by setup, then commands; crashes are injected in cmds[from:].
type scenario struct {
	name   string
	deploy func(*fleet.Deploy)
	setup  func(t *testing.T, l *lab)
	cmds   []command
	from   int
}

func firstDeployed(t *testing.T, l *lab) {
	t.Helper()
	l.build("web")
	c := l.controller()
	if _, err := c.Start(t.Context(), "web", rollout.StartOptions{AutoPromote: new(true)}); err != nil {
		t.Fatal(err)
	}
	l.build("web")
}

var scenarios = []scenario{
	{name: "first deploy (auto_promote)", deploy: func(d *fleet.Deploy) { d.AutoPromote = true },
		setup: func(_ *testing.T, l *lab) { l.build("web") }, cmds: []command{cmdStart}},
	{name: "second rollout", setup: firstDeployed, cmds: []command{cmdStart, cmdPromote, cmdLater}},
	{name: "green fails its checks", setup: func(t *testing.T, l *lab) {
		firstDeployed(t, l)
		l.setHealthy(l.identities["web#2"], false)
	}, cmds: []command{cmdStart}},
	{name: "abort", setup: firstDeployed, cmds: []command{cmdStart, cmdAbort}, from: 1},
	{name: "rollback in keep_old", setup: firstDeployed, cmds: []command{cmdStart, cmdPromote, cmdRollback}, from: 2},
	{name: "watch rolls back", setup: func(t *testing.T, l *lab) {
		firstDeployed(t, l)
		l.onEvent = func(e rollout.Event) {
			if e.Kind == "transition" && e.State == rollout.Draining {
				l.setHealthy(l.identities["web#2"], false)
			}
		}
	}, cmds: []command{cmdStart, cmdPromote}, from: 1},
	{name: "rollback after keep_old", setup: func(t *testing.T, l *lab) {
		firstDeployed(t, l)
		c := l.controller()
		if _, err := c.Start(t.Context(), "web", rollout.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Promote(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		l.clock.Advance(16 * time.Minute)
	}, cmds: []command{cmdRollback}},
}

// snapshot is the end state of a lab in terms that do not depend on random rollout IDs.
type snapshot struct {
	Instances string // image#n:count of running instances
	Holder    string // image#n/slot of the failover IP's holder
	Latest    string // kind, state and image of the newest rollout
	Live      string // image of the live rollout
	Active    string // state of the rollout in flight
	Marks     string // images marked in use
	Lock      string
	Leftovers string // what gc would find
}

func (l *lab) name(identity string) string {
	for k, v := range l.identities {
		if v == identity {
			return k
		}
	}
	return "?"
}

func (l *lab) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	var parts []string
	for img, ins := range l.running("web") {
		parts = append(parts, fmt.Sprintf("%s:%d", l.name(img), len(ins)))
	}
	slices.Sort(parts)
	s.Instances = strings.Join(parts, " ")
	if _, img, slot := l.holder(); img != "" {
		s.Holder = l.name(img) + "/" + slot
	}
	c := l.controller()
	st, err := c.Status(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Latest; r != nil {
		s.Latest = fmt.Sprintf("%s %s %s", r.Kind, r.State, l.name(r.Image.Identity))
	}
	if r := st.Live; r != nil {
		s.Live = l.name(r.Image.Identity)
	}
	if r := st.Active; r != nil {
		s.Active = string(r.State)
	}
	inUse, err := rollout.ImagesInUse(ctx, l.store)
	if err != nil {
		t.Fatal(err)
	}
	parts = nil
	for id := range inUse {
		parts = append(parts, l.name(id))
	}
	slices.Sort(parts)
	s.Marks = strings.Join(parts, " ")
	s.Lock = "free"
	if lease, err := l.lease("web"); err == nil {
		s.Lock = lease.Owner
	}
	rep, err := c.GC(ctx, rollout.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Leftovers = fmt.Sprintf("instances=%d marks=%d", len(rep.Instances), len(rep.Marks))
	for _, in := range st.Instances {
		if !in.Owned && in.State != "terminated" {
			s.Leftovers += " orphan:" + in.ID
		}
	}
	return s
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, rollout.ErrUpToDate):
		return "up to date"
	case errors.Is(err, rollout.ErrNothingToDo):
		return "nothing to do"
	case errors.Is(err, rollout.ErrCrashed):
		return "crashed"
	}
	return "error"
}

// TestCrashAtEveryTransition kills the controller (the crash hook) right after each transition is
// persisted, runs the same command again with a fresh Controller over the same store and providers,
// finishes the scenario, and checks the end state is the one of an uninterrupted run, with no orphan.
func TestCrashAtEveryTransition(t *testing.T) {
	var table []string
	var host, dead string
	for _, sc := range scenarios {
		run := func(t *testing.T, crashAt int, crashState rollout.State) (snapshot, [][]rollout.State, []string) {
			l := newLab(t, webRole(func(d *fleet.Deploy) {
				d.Watch = 30 * ms
				if sc.deploy != nil {
					sc.deploy(d)
				}
			}))
			sc.setup(t, l)
			var perCmd [][]rollout.State
			var results []string
			for i, cmd := range sc.cmds {
				l.resetEvents()
				ctx := t.Context()
				if i == crashAt {
					// The crashed drover is a process of this host that is gone now: the rerun,
					// another process, takes its lock over instead of waiting for it to expire.
					crashing := l.controller(func(o *rollout.Options) {
						o.CrashAfter, o.Owner = crashState, "crashed@"+host+" pid "+dead
					})
					_, err := cmd.run(ctx, l, crashing)
					if !errors.Is(err, rollout.ErrCrashed) {
						t.Fatalf("%s: crash after %s: got %v, want the crash", cmd.name, crashState, err)
					}
					results = append(results, "crashed")
				}
				_, err := cmd.run(ctx, l, l.controller())
				if err != nil && outcome(err) == "error" && !strings.Contains(err.Error(), "failed") {
					t.Fatalf("%s: %v", cmd.name, err)
				}
				results = append(results, outcome(err))
				perCmd = append(perCmd, l.transitions())
			}
			return l.snapshot(t), perCmd, results
		}
		t.Run(sc.name, func(t *testing.T) {
			host, _ = hostname()
			dead = deadPID(t)
			want, baseline, _ := run(t, -1, "")
			if strings.Contains(want.Leftovers, "orphan") || want.Leftovers != "instances=0 marks=0" || want.Lock != "free" {
				t.Fatalf("baseline leaves %+v", want)
			}
			for i := sc.from; i < len(sc.cmds); i++ {
				for _, st := range baseline[i] {
					got, _, results := run(t, i, st)
					verdict := "converged"
					if got != want {
						verdict = "DIVERGED"
						t.Errorf("%s: crash after %s: end state\n got %+v\nwant %+v", sc.cmds[i].name, st, got, want)
					}
					table = append(table, fmt.Sprintf("%-28s %-9s %-13s rerun=%-14s %s (%s; ip %s; latest %s)",
						sc.name, sc.cmds[i].name, st, results[i+1], verdict, want.Instances, want.Holder, want.Latest))
				}
			}
		})
	}
	t.Logf("crash matrix (scenario, command, crash right after, rerun outcome, verdict, end state):\n%s", strings.Join(table, "\n"))
}
