package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
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
