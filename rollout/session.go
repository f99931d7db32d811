package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout/health"
)

// Instance labels. Every instance a rollout launches carries them; the controller finds instances
// by them and by nothing else. color is the instance's color in the rollout that launched it
// (always green: the same instances are the blue of the next rollout).
const (
	LabelRole    = "role"
	LabelColor   = "color"
	LabelRollout = "rollout"
	LabelSlot    = "slot"
)

// session is one command working on one role under its lock.
type session struct {
	c       *Controller
	cmd     string
	role    *fleet.Role
	dep     *fleet.Deploy
	started time.Time
	comp    compute.Provider
	cut     Cutover
	strat   Strategy // the deploy block's: it admits new rollouts (each record names its own)
	checks  []health.Check
	recs    []*Record // oldest first
	// holderFailed is set by a hand-back after green failed with the data: the volumes' holder
	// serves nothing, so it is stopped before the instance taking them back boots (moveVolumesTo).
	holderFailed bool
}

// withRole runs fn under the role's lock, after the records are loaded and what an earlier, killed
// command left behind is repaired (see sweep). The lock is released when fn returns, except after a
// simulated crash.
func (c *Controller) withRole(ctx context.Context, cmd, role string, fn func(context.Context, *session) (*Record, error)) (rec *Record, err error) {
	r, dep, err := c.deployOf(role)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, cmd: cmd, role: r, dep: dep, started: time.Now()}
	if s.strat, err = c.strategyOf(dep); err != nil {
		return nil, fmt.Errorf("rollout: role %q: %w", role, err)
	}
	if s.checks, err = c.checksOf(role, dep); err != nil {
		return nil, err
	}
	if s.comp, err = c.computeOf(ctx, role, dep); err != nil {
		return nil, err
	}
	if s.cut, err = c.cutoverOf(ctx, role, dep); err != nil {
		return nil, err
	}
	lk, lctx, err := c.lock(ctx, role, func(h store.Lease, left time.Duration) {
		s.step("", "lock", fmt.Sprintf("waiting for the lock of role %s, held by %s for %s (token %d); waiting up to %s more",
			role, h.Owner, human(time.Since(h.Acquired)), h.Token, human(left)))
	})
	if err != nil {
		return nil, err
	}
	s.step("", "lock", fmt.Sprintf("locked role %s as %s", role, c.owner))
	defer func() {
		if errors.Is(err, ErrCrashed) {
			lk.abandon()
			return
		}
		if rerr := lk.release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
		if cause := context.Cause(lctx); err != nil && cause != nil && errors.Is(cause, errLockLost) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}()
	if s.recs, err = loadRecords(lctx, c.opts.Store, role); err != nil {
		return nil, err
	}
	// An unfinished volume operation is finished by its own command first: the sweep would move the
	// volumes it is moving.
	ops, err := loadVolumeOps(lctx, c.opts.Store, role)
	if err != nil {
		return nil, err
	}
	if op := pendingOp(ops); op != nil {
		if !strings.HasPrefix(cmd, "volumes ") {
			return nil, &VolumeOpPendingError{Op: op}
		}
	} else if err := s.sweep(lctx); err != nil {
		return nil, err
	}
	return fn(lctx, s)
}

// active is the rollout in flight (not at an end), or nil. The lock and the checks of Start keep it
// to one.
func (s *session) active() *Record {
	for i := len(s.recs) - 1; i >= 0; i-- {
		if !s.recs[i].State.Terminal() {
			return s.recs[i]
		}
	}
	return nil
}

// live is the newest retired rollout: what serves when no rollout is cut over. nil before the first
// deploy finishes.
func (s *session) live() *Record { return liveOf(s.recs) }

func liveOf(recs []*Record) *Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].State == Retired {
			return recs[i]
		}
	}
	return nil
}

func (s *session) latest() *Record {
	if len(s.recs) == 0 {
		return nil
	}
	return s.recs[len(s.recs)-1]
}

func (s *session) byID(id string) *Record {
	for _, r := range s.recs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ownedOf is the set of rollouts whose instances should exist: the one in flight and the live one.
// Instances of every other known rollout are leftovers and are destroyed.
func ownedOf(recs []*Record) map[string]*Record {
	out := map[string]*Record{}
	for _, r := range recs {
		if !r.State.Terminal() {
			out[r.ID] = r
		}
	}
	if l := liveOf(recs); l != nil {
		out[l.ID] = l
	}
	return out
}

// create persists a new rollout of the deploy's strategy, with the progress its Admit gave, in
// state planned. Nothing has happened yet; a crash right after leaves a record that the next Start
// resumes (or Abort ends).
func (s *session) create(ctx context.Context, img Image, kind string, autoPromote bool, progress Progress) (*Record, error) {
	seq := 1
	if l := s.latest(); l != nil {
		seq = l.Seq + 1
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	now := s.c.now()
	r := &Record{
		ID: fmt.Sprintf("%s-%d-%s", s.role.Name, seq, hex.EncodeToString(rnd[:])), Role: s.role.Name, Seq: seq,
		Kind: kind, State: Planned, Strategy: s.strat.Name(), Progress: progress, Compute: s.dep.Compute, Count: max(s.dep.Count, 1),
		Owner: s.c.owner, Image: img, Created: now, Updated: now,
		Cutover:     CutoverRecord{Type: s.cut.Type(), Target: s.cut.Target()},
		AutoPromote: autoPromote, KeepOld: Duration(s.dep.KeepOld), Watch: Duration(s.dep.Watch),
	}
	if l := s.live(); l != nil {
		r.Previous, r.PreviousImage = l.ID, &l.Image
		blue, err := s.instancesOf(ctx, l, true)
		if err != nil {
			return nil, err
		}
		r.Blue = refs(blue)
	}
	r.Transitions = []Transition{{State: Planned, At: now, Note: fmt.Sprintf("%s of image %s by %s", kind, img.Short, s.c.owner)}}
	if err := saveRecord(ctx, s.c.opts.Store, r); err != nil {
		return nil, err
	}
	s.recs = append(s.recs, r)
	s.transitioned(r, "", r.Transitions[0].Note)
	if err := s.c.crashPoint(Planned); err != nil {
		return r, err
	}
	return r, s.syncMarks(ctx)
}

// move persists r's transition to state to (with mutate applied) before anything else happens, then
// reports it. After it returns nil the caller does the side effects of the new state.
func (s *session) move(ctx context.Context, r *Record, to State, note string, mutate func(*Record)) error {
	if !CanMove(r.State, to) {
		return fmt.Errorf("rollout: role %q: rollout %s cannot go from %s to %s", r.Role, r.ID, r.State, to)
	}
	next := r.clone()
	if mutate != nil {
		mutate(next)
	}
	from := next.State
	now := s.c.now()
	next.State, next.Updated = to, now
	next.Transitions = append(next.Transitions, Transition{State: to, At: now, Note: note})
	if err := saveRecord(ctx, s.c.opts.Store, next); err != nil {
		return err
	}
	*r = *next
	s.transitioned(r, from, note)
	return s.c.crashPoint(to)
}

// noteError records an error on r without a transition (best effort: the error is returned anyway).
func (s *session) noteError(ctx context.Context, r *Record, err error) {
	next := r.clone()
	next.Errors = append(next.Errors, ErrorEntry{At: s.c.now(), State: r.State, Message: health.Redact(err.Error())})
	if len(next.Errors) > 20 {
		next.Errors = next.Errors[len(next.Errors)-20:]
	}
	if saveRecord(context.WithoutCancel(ctx), s.c.opts.Store, next) == nil {
		*r = *next
	}
}

// instancesOf lists a rollout's instances as the provider reports them, by slot. With liveOnly,
// terminated ones are left out.
func (s *session) instancesOf(ctx context.Context, r *Record, liveOnly bool) ([]compute.Instance, error) {
	ins, err := s.comp.Instances(ctx, compute.Selector{LabelRole: r.Role, LabelRollout: r.ID})
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: listing instances of rollout %s: %w", r.Role, r.ID, err)
	}
	out := ins[:0]
	for _, in := range ins {
		if !liveOnly || in.State != compute.Terminated {
			out = append(out, in)
		}
	}
	sortBySlot(out)
	return out, nil
}

func sortBySlot(ins []compute.Instance) {
	slices.SortStableFunc(ins, func(a, b compute.Instance) int {
		if d := slotOf(a) - slotOf(b); d != 0 {
			return d
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
}

func slotOf(in compute.Instance) int {
	n, err := strconv.Atoi(in.Labels[LabelSlot])
	if err != nil {
		return 1 << 30
	}
	return n
}

// token is the launch token of a slot: launching it again returns the same instance.
func token(r *Record, slot int) string { return fmt.Sprintf("%s-%d", r.ID, slot) }
