package rollout

import (
	"context"
	"fmt"
)

// Abort ends the rollout in flight before its cutover: its green instances are destroyed and blue
// keeps serving as it did. After a cutover, Abort refuses (Rollback moves traffic back first).
//
// Abort is persisted (aborted) before anything is destroyed, and destroying is idempotent, so a
// killed Abort is finished by running it again (or by any later command). When the newest rollout
// is already aborted, Abort changes nothing and returns it.
func (c *Controller) Abort(ctx context.Context, role string) (*Record, error) {
	return c.withRole(ctx, "abort", role, func(ctx context.Context, s *session) (*Record, error) {
		a := s.active()
		if a == nil {
			if l := s.latest(); l != nil && l.State == Aborted {
				s.step(l.ID, "abort", fmt.Sprintf("rollout %s is already aborted", l.ID))
				return l, nil
			}
			return s.latest(), fmt.Errorf("%w: role %q has no rollout in progress to abort", ErrNothingToDo, role)
		}
		if a.State.CutOver() {
			return a, fmt.Errorf("rollout: role %q: rollout %s is already cut over (%s); use rollback to move traffic back to blue", role, a.ID, a.State)
		}
		return a, s.abort(ctx, a, "aborted by hand")
	})
}

func (s *session) abort(ctx context.Context, a *Record, note string) error {
	what := ": green destroyed, blue untouched"
	if a.Progress.AB != nil {
		what = ": each device that runs its trial is rebooted into its committed slot"
	}
	if err := s.move(ctx, a, Aborted, note+what, nil); err != nil {
		return err
	}
	return s.cleanup(ctx)
}

// Tick does what is due on a role without being asked: it retires a promoted rollout whose keep_old
// has passed (destroying blue) and repairs what a killed command left behind (see the commands). It
// returns the rollout in flight or, without one, the newest. The CLI can run it from any command or a
// timer; it is idempotent.
func (c *Controller) Tick(ctx context.Context, role string) (*Record, error) {
	return c.withRole(ctx, "tick", role, func(ctx context.Context, s *session) (*Record, error) {
		if a := s.active(); a != nil {
			return a, nil
		}
		return s.latest(), nil
	})
}
