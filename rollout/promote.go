package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/rollout/health"
)

// ErrNothingToDo is wrapped when a command finds no rollout to act on.
var ErrNothingToDo = errors.New("rollout: nothing to do")

// Promote cuts traffic over to the green instances of the rollout in flight, watches them through
// the public address for the deploy's watch window, and keeps blue for keep_old (destroyed by the
// next command or Tick after that; at once when keep_old is 0 or there is no blue).
//
// A rollout that is not ready yet (a killed Start) is driven through boot and health checks first.
// Promote is idempotent: run again, it resumes from the persisted state (the cutover is an
// idempotent Assign); on an already promoted rollout it changes nothing. A failure inside the watch
// window rolls back by itself (traffic back on blue, green destroyed) and Promote returns the
// rolled-back record with an error wrapping the *health.Failure; without blue (a first deploy) the
// rollout ends failed instead. When the cutover itself fails, the rollout stays cutting-over: run
// Promote again, or Rollback.
func (c *Controller) Promote(ctx context.Context, role string) (*Record, error) {
	return c.withRole(ctx, "promote", role, func(ctx context.Context, s *session) (*Record, error) {
		a := s.active()
		if a == nil {
			l := s.latest()
			if l != nil && l.State == Retired {
				s.step(l.ID, "promote", fmt.Sprintf("rollout %s is already promoted and retired its blue", l.ID))
				return l, nil
			}
			if l == nil {
				return nil, fmt.Errorf("%w: role %q has no rollout to promote; drover rollout start %s", ErrNothingToDo, role, role)
			}
			return l, fmt.Errorf("%w: role %q has no rollout in progress (the latest, %s, is %s)", ErrNothingToDo, role, l.ID, l.State)
		}
		if a.State == Promoted {
			s.step(a.ID, "promote", fmt.Sprintf("already promoted; blue kept until %s", a.KeepUntil.Format(time.RFC3339)))
		}
		return s.drive(ctx, a, Promoted)
	})
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
	s.step(r.ID, "watch", fmt.Sprintf("watching %d target(s) for %s", len(targets), max(window, 0)))
	var err error
	if len(s.checks) == 0 {
		err = sleepCtx(ctx, window)
	} else {
		err = health.Watch(ctx, s.checks, targets, window, s.observer(r, "watch"))
	}
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

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
