package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout/health"
)

// bluegreen is the default strategy: boot every green beside blue, health-check them, move the
// cutover to them at once, watch them through it, and keep blue for keep_old for an instant
// rollback:
//
//	planned -> booting -> checking -> ready -> cutting-over -> draining -> promoted -> retired
//
// A green that fails its checks is destroyed before any traffic reaches it; a failure in the watch
// moves traffic back to blue by itself.
type bluegreen struct{}

func (bluegreen) Name() string { return "bluegreen" }

// Validate: bluegreen deploys any deploy block the fleet decoder accepts.
func (bluegreen) Validate(*fleet.Role) []fleet.Refusal { return nil }

// Admit: bluegreen rolls out over anything that serves; it keeps no progress of its own.
func (bluegreen) Admit(*fleet.Deploy, *Record) (Progress, error) { return Progress{}, nil }

func (bluegreen) Advance(ctx context.Context, s *session, r *Record, goal State) (bool, error) {
	if r.State.Terminal() || r.State.rank() >= goal.rank() {
		if r.State == Promoted {
			return true, s.finishPromoted(ctx, r)
		}
		return true, nil
	}
	switch r.State {
	case Planned:
		return false, s.move(ctx, r, Booting, fmt.Sprintf("launching %d green instance(s) on %s", r.Count, r.Compute), nil)
	case Booting:
		return false, s.boot(ctx, r)
	case Checking:
		return false, s.check(ctx, r)
	case Ready:
		return false, s.beginCutover(ctx, r)
	case CuttingOver:
		return false, s.cutover(ctx, r)
	case Draining:
		return false, s.watch(ctx, r)
	}
	return false, fmt.Errorf("rollout: role %q: rollout %s is %s, which bluegreen does not move from", r.Role, r.ID, r.State)
}

// Rollback before the cutover is an abort; after it, the cutover goes back to blue.
func (bluegreen) Rollback(ctx context.Context, s *session, r *Record) error {
	if !r.State.CutOver() {
		return s.abort(ctx, r, "rolled back before any cutover")
	}
	return s.cutBack(ctx, r)
}

func (bluegreen) Plan(p *planner) {
	dep, role := p.dep, p.role
	p.add("boot", p.done(Booting), "boot %d green instance(s) of image %s on compute %q (ports %s)", p.count, p.img.Short, dep.Compute, portsText(dep.Ports))
	if len(dep.Health) == 0 {
		p.add("health", p.done(Checking), "no health checks declared: green is ready once it runs")
	}
	for _, hc := range dep.Health {
		p.add("health", p.done(Checking), "check each green: %s (every %s, timeout %s, %d in a row, within %s)",
			health.Describe(hc), hc.Interval, hc.Timeout, hc.Healthy, hc.Deadline)
	}
	if dep.AutoPromote {
		p.add("promote", false, "promote at once (auto_promote)")
	} else {
		p.add("promote", false, "stop at ready; promote with: drover rollout promote %s", role)
	}
	p.add("cutover", p.done(CuttingOver), "%s", p.cut.Step)
	watch := max(dep.Watch, dep.Cutover.Drain)
	if p.live == nil {
		p.add("watch", p.done(Draining), "watch %s: the same checks %s; a failure fails the rollout (first deploy: no blue)", watch, p.cut.Watch)
		p.add("keep", false, "first deploy: no blue to keep")
		return
	}
	p.add("watch", p.done(Draining), "watch %s: the same checks %s; a failure rolls back to blue by itself", watch, p.cut.Watch)
	blue := fmt.Sprintf("blue (rollout %s, image %s, %d instance(s))", p.live.ID, p.live.Image.Short, len(p.live.Green))
	if dep.KeepOld > 0 {
		p.add("keep", false, "keep %s for %s for an instant rollback, then destroy it", blue, dep.KeepOld)
	} else {
		p.add("keep", false, "destroy %s at once (keep_old is 0)", blue)
	}
}

// beginCutover records what the cutover target points at now, then moves to cutting-over. Reading
// the target is the only thing done before the transition.
func (s *session) beginCutover(ctx context.Context, r *Record) error {
	before, err := s.cut.Current(ctx)
	if err != nil {
		return fmt.Errorf("rollout: role %q: reading cutover %s: %w", r.Role, s.cut.Target(), err)
	}
	var snap *CutoverSnapshot
	if sn, ok := s.cut.(Snapshotter); ok {
		if snap, err = sn.Snapshot(ctx); err != nil {
			return fmt.Errorf("rollout: role %q: saving what %s serves before the cutover: %w", r.Role, s.cut.Target(), err)
		}
	}
	note := fmt.Sprintf("moving %s from %s to green", s.cut.Target(), orNone(before))
	return s.move(ctx, r, CuttingOver, note, func(n *Record) {
		n.Cutover.Type, n.Cutover.Target, n.Cutover.Before, n.Cutover.Snapshot = s.cut.Type(), s.cut.Target(), before, snap
	})
}

// cutover points the target at green (idempotent), then moves to draining.
func (s *session) cutover(ctx context.Context, r *Record) error {
	ins, err := s.instancesOf(ctx, r, true)
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		return fmt.Errorf("rollout: role %q: rollout %s has no running green instance to cut over to; roll back or abort", r.Role, r.ID)
	}
	start := time.Now()
	note, err := s.cut.Point(ctx, ins)
	if err != nil {
		return fmt.Errorf("rollout: role %q: cutting %s over to %s: %w", r.Role, s.cut.Target(), ins[0].ID, err)
	}
	after, err := s.cut.Current(ctx)
	if err != nil {
		return fmt.Errorf("rollout: role %q: reading cutover %s: %w", r.Role, s.cut.Target(), err)
	}
	if note != "" {
		s.step(r.ID, "cutover", note)
	}
	msg := fmt.Sprintf("%s now at %s (moved in %s)", s.cut.Target(), orNone(after), human(time.Since(start)))
	return s.move(ctx, r, Draining, msg, func(n *Record) { n.Cutover.After, n.Cutover.Note = after, note })
}

// watch runs the deploy's checks through the public address (the instances themselves when the
// cutover has none) for what is left of max(watch, drain), then promotes. A failure rolls back to
// blue, or, without blue, ends the rollout failed.
func (s *session) watch(ctx context.Context, r *Record) error {
	window := max(time.Duration(r.Watch), s.dep.Cutover.Drain)
	if r.Cutover.Snapshot != nil {
		// Clients may use blue's cached answers for the old TTL: blue must outlive them.
		window = max(window, time.Duration(r.Cutover.Snapshot.Drain))
	}
	if since := s.c.now().Sub(r.At(Draining)); since > 0 {
		window -= since
	}
	targets := s.cut.WatchTargets()
	if targets == nil {
		ins, err := s.instancesOf(ctx, r, true)
		if err != nil {
			return err
		}
		for _, in := range ins {
			targets = append(targets, target(in))
		}
	}
	err := s.watchFor(ctx, r, targets, window, "target(s)")
	var f *health.Failure
	if errors.As(err, &f) {
		return s.watchFailed(ctx, r, f)
	}
	if err != nil {
		return err
	}
	keep := time.Duration(r.KeepOld)
	note := "watch passed"
	if r.Previous != "" && keep > 0 {
		note += fmt.Sprintf("; blue (rollout %s) kept for %s", r.Previous, keep)
	}
	return s.move(ctx, r, Promoted, note, func(n *Record) { n.KeepUntil = s.c.now().Add(keep) })
}

// watchFor runs the deploy's checks against targets for window (without checks it only waits),
// reported as the watch step; a failure is a *health.Failure.
func (s *session) watchFor(ctx context.Context, r *Record, targets []health.Target, window time.Duration, what string) error {
	s.step(r.ID, "watch", fmt.Sprintf("watching %d %s for %s", len(targets), what, max(window, 0)))
	if len(s.checks) == 0 {
		return sleepCtx(ctx, window)
	}
	return health.Watch(ctx, s.checks, targets, window, s.observer(r, "watch"))
}

// watchFailed rolls back to blue (or fails a first deploy) after a failure in the watch window.
func (s *session) watchFailed(ctx context.Context, r *Record, f *health.Failure) error {
	to, what := RolledBack, "traffic back on blue (rollout "+r.Previous+"), green destroyed"
	if r.Previous == "" {
		to, what = Failed, "no blue to go back to (first deploy): green destroyed"
	}
	if err := s.move(ctx, r, to, "watch failed: "+f.Error(), func(n *Record) { n.Health = f }); err != nil {
		return err
	}
	start := time.Now()
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	s.step(r.ID, "rollback", fmt.Sprintf("%s in %s", what, human(time.Since(start))))
	return &endError{fmt.Errorf("rollout: role %q: rollout %s failed its post-cutover watch, %s: %w", r.Role, r.ID, what, f)}
}

// finishPromoted retires r at once when there is no blue to keep or keep_old is 0; otherwise blue
// stays until KeepUntil, when the next command or Tick retires it.
func (s *session) finishPromoted(ctx context.Context, r *Record) error {
	var note string
	switch {
	case r.Previous == "":
		note = "first deploy: no blue to keep"
	case r.KeepOld <= 0:
		note = "keep_old is 0: blue destroyed"
	case !s.c.now().Before(r.KeepUntil):
		note = fmt.Sprintf("keep_old %s passed: blue destroyed", r.KeepOld)
	default:
		s.step(r.ID, "keep", fmt.Sprintf("blue (rollout %s) kept until %s for an instant rollback", r.Previous, r.KeepUntil.Format(time.RFC3339)))
		return nil
	}
	if err := s.move(ctx, r, Retired, note, nil); err != nil {
		return err
	}
	return s.cleanup(ctx)
}

// cutBack moves the cutover back to blue and destroys green: persisted first (rolled-back), then the
// cleanup does the side effects in order: cutover to blue, green destroyed, marks.
func (s *session) cutBack(ctx context.Context, a *Record) error {
	if a.Previous == "" {
		return fmt.Errorf("%w: role %q: rollout %s is the first deploy; there is no blue to go back to (abort is not possible after cutover either)",
			ErrNothingToDo, a.Role, a.ID)
	}
	blue, err := s.instancesOf(ctx, s.byIDOrEmpty(a.Previous), true)
	if err != nil {
		return err
	}
	if len(blue) == 0 {
		return fmt.Errorf("rollout: role %q: blue rollout %s has no running instance left to go back to; start an earlier image instead", a.Role, a.Previous)
	}
	start := time.Now()
	note := fmt.Sprintf("rolled back by hand: %s back to blue (rollout %s, %s)", s.cut.Target(), a.Previous, blue[0].ID)
	if err := s.move(ctx, a, RolledBack, note, nil); err != nil {
		return err
	}
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	s.step(a.ID, "rollback", fmt.Sprintf("traffic back on blue and green destroyed in %s", human(time.Since(start))))
	return nil
}
