package rollout

import (
	"context"
	"fmt"
)

// Rollback undoes the role's newest rollout. One in flight is undone by the strategy that drives it
// (Strategy.Rollback); for bluegreen (and raft's first node):
//
//   - cut over and blue still kept (cutting-over, draining, promoted within keep_old): the cutover
//     goes back to blue at once, without health gates (blue was serving a moment ago), then green is
//     destroyed; the rollout ends rolled-back;
//   - not cut over yet: the same as Abort;
//   - retired (keep_old passed, blue destroyed): the previous image is redeployed as a new rollout of
//     kind rollback, with boot, health gate, cutover and watch, promoted at once, if the deploy's
//     strategy admits it (raft refuses: a new node would start an empty cluster).
//
// Rollback is idempotent: when the newest rollout is already rolled back or aborted, or is itself a
// finished rollback, it changes nothing and returns it; a rollback rollout in flight (a killed
// Rollback) is resumed. To go further back, start an older image: Start with StartOptions.Image.
//
// The cut back is persisted (rolled-back) before the cutover moves; if it fails part way, the next
// command (any of them) finishes moving the cutover to blue and destroying green.
func (c *Controller) Rollback(ctx context.Context, role string) (*Record, error) {
	return c.withRole(ctx, "rollback", role, func(ctx context.Context, s *session) (*Record, error) {
		if a := s.active(); a != nil {
			if a.Kind == KindRollback {
				s.step(a.ID, "resume", fmt.Sprintf("resuming rollback rollout %s from %s", a.ID, a.State))
				return s.drive(ctx, a, Promoted)
			}
			st, err := s.strategyFor(a)
			if err != nil {
				return a, fmt.Errorf("rollout: role %q: rollout %s: %w", role, a.ID, err)
			}
			return a, st.Rollback(ctx, s, a)
		}
		l := s.latest()
		switch {
		case l == nil:
			return nil, fmt.Errorf("%w: role %q has never been rolled out", ErrNothingToDo, role)
		case l.State == RolledBack || l.State == Aborted || l.State == Failed:
			s.step(l.ID, "rollback", fmt.Sprintf("the newest rollout, %s, is already %s; %s still serves", l.ID, l.State, liveName(s.live())))
			return l, nil
		case l.Kind == KindRollback:
			s.step(l.ID, "rollback", fmt.Sprintf("the newest rollout, %s, is already a rollback (to image %s)", l.ID, l.Image.Short))
			return l, nil
		case l.PreviousImage == nil:
			return l, fmt.Errorf("%w: role %q: rollout %s was the first deploy; there is no earlier image to go back to", ErrNothingToDo, role, l.ID)
		}
		prev := *l.PreviousImage
		s.step(l.ID, "rollback", fmt.Sprintf("blue of rollout %s is gone (keep_old passed): redeploying the previous image %s", l.ID, prev.Short))
		if _, err := c.imageOf(role, prev); err != nil {
			return l, err
		}
		progress, err := s.strat.Admit(s.dep, s.live())
		if err != nil {
			return l, fmt.Errorf("rollout: role %q: %w", role, err)
		}
		if progress.Handoff != nil { // refused before any record: blue could never start again
			if err := s.checkRestartable(); err != nil {
				return l, err
			}
		}
		r, err := s.create(ctx, prev, KindRollback, true, progress)
		if err != nil {
			return r, err
		}
		return s.drive(ctx, r, Promoted)
	})
}

func (s *session) byIDOrEmpty(id string) *Record {
	if r := s.byID(id); r != nil {
		return r
	}
	return &Record{ID: id, Role: s.role.Name}
}

func liveName(l *Record) string {
	if l == nil {
		return "nothing"
	}
	return fmt.Sprintf("rollout %s (image %s)", l.ID, l.Image.Short)
}
