package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/drover-dev/drover/plugins/compute"
)

// sweep repairs what the records say against what the providers report, at the start of every
// command and after every end state: it retires a promoted rollout whose keep_old has passed, points
// the cutover back at the rollout that should serve, destroys the instances of known rollouts that
// no longer own any, and brings the role's in-use image marks up to date. Every step is idempotent;
// a failure part way leaves the rest for the next command. Instances whose rollout label names no
// record are left alone: drover gc reports them.
func (s *session) sweep(ctx context.Context) error {
	if a := s.active(); a != nil && a.State == Promoted && !s.c.now().Before(a.KeepUntil) {
		note := fmt.Sprintf("keep_old %s passed: blue destroyed", a.KeepOld)
		if err := s.move(ctx, a, Retired, note, nil); err != nil {
			return err
		}
	}
	return s.cleanup(ctx)
}

// cleanup is sweep without the retirement: volumes, cutover, leftovers, marks.
func (s *session) cleanup(ctx context.Context) error {
	if err := s.ensureVolumes(ctx); err != nil {
		return err
	}
	if err := s.ensureSlots(ctx); err != nil {
		return err
	}
	if err := s.ensureCutover(ctx); err != nil {
		return err
	}
	if err := s.destroyLeftovers(ctx); err != nil {
		return err
	}
	return s.syncMarks(ctx)
}

// ensureCutover points the cutover at the rollout that should serve: the one in flight once it is
// draining or promoted, otherwise the live one. A rollout cutting over is left to the command that
// resumes it (promote, or rollback). Pointing at what is already served changes nothing.
func (s *session) ensureCutover(ctx context.Context) error {
	if s.cut.Type() == "none" {
		return nil
	}
	var want *Record
	if a := s.active(); a != nil {
		switch a.State {
		case CuttingOver:
			return nil
		case Draining, Promoted:
			want = a
		}
	}
	if want == nil {
		want = s.live()
	}
	if want == nil {
		return nil
	}
	ins, err := s.instancesOf(ctx, want, true)
	if err != nil || len(ins) == 0 {
		return err
	}
	if sn, ok := s.cut.(Snapshotter); ok && want == s.live() {
		if from := s.rolledBackFrom(want); from != nil {
			return s.restore(ctx, sn, from)
		}
	}
	cur, err := s.cut.Current(ctx)
	if err != nil {
		return fmt.Errorf("rollout: role %q: reading cutover %s: %w", s.role.Name, s.cut.Target(), err)
	}
	if len(cur) > 0 && !slices.ContainsFunc(cur, func(id string) bool { return !slices.Contains(ids(ins), id) }) {
		return nil
	}
	if _, err := s.cut.Point(ctx, ins); err != nil {
		return fmt.Errorf("rollout: role %q: pointing %s at rollout %s (%s): %w", s.role.Name, s.cut.Target(), want.ID, ins[0].ID, err)
	}
	s.step(want.ID, "cutover", fmt.Sprintf("%s pointed at %v; now at rollout %s (%s)", s.cut.Target(), orNone(cur), want.ID, ins[0].ID))
	return nil
}

// rolledBackFrom returns the newest rollout, when it is one that cut over away from live and ended
// rolled back or failed with a saved snapshot: the cutover must serve that snapshot again.
func (s *session) rolledBackFrom(live *Record) *Record {
	l := s.latest()
	if l == nil || l.Previous != live.ID || l.Cutover.Snapshot == nil || (l.State != RolledBack && l.State != Failed) {
		return nil
	}
	return l
}

// restore puts back what the cutover served before rollout r moved it, then waits out the drain
// (the TTL green was served with) so no client still holds green's answer when green is destroyed.
func (s *session) restore(ctx context.Context, sn Snapshotter, r *Record) error {
	note, drain, err := sn.Restore(ctx, r.Cutover.Snapshot)
	if err != nil {
		return fmt.Errorf("rollout: role %q: restoring %s as it was before rollout %s: %w", s.role.Name, s.cut.Target(), r.ID, err)
	}
	s.step(r.ID, "cutover", note)
	if drain > 0 {
		s.step(r.ID, "drain", fmt.Sprintf("draining %s (the TTL green was served with) before green is destroyed", drain))
		return sleepCtx(ctx, drain)
	}
	return nil
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "nothing"
	}
	return strings.Join(ids, ",")
}

// destroyLeftovers terminates the instances of the role's known rollouts that own none any more.
func (s *session) destroyLeftovers(ctx context.Context) error {
	all, err := s.comp.Instances(ctx, compute.Selector{LabelRole: s.role.Name})
	if err != nil {
		return fmt.Errorf("rollout: role %q: listing instances: %w", s.role.Name, err)
	}
	owned := ownedOf(s.recs)
	doomed := map[string][]compute.Instance{}
	for _, in := range all {
		id := in.Labels[LabelRollout]
		if id == "" || owned[id] != nil || s.byID(id) == nil {
			continue
		}
		doomed[id] = append(doomed[id], in)
	}
	keys := make([]string, 0, len(doomed))
	for k := range doomed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, id := range keys {
		ins := doomed[id]
		if err := terminateAll(ctx, s.comp, ins, s.c.revokeCredential); err != nil {
			errs = append(errs, fmt.Errorf("rollout: role %q: destroying instances of rollout %s: %w", s.role.Name, id, err))
			continue
		}
		s.step(id, "destroy", fmt.Sprintf("destroyed %d instance(s) of rollout %s (%s): %s", len(ins), id, s.byID(id).State, strings.Join(ids(ins), ", ")))
	}
	return errors.Join(errs...)
}

// terminateAll terminates instances, a few at a time, each after before (the revocation of its
// boot credential) succeeded: an instance whose credential could not be revoked is kept, labeled,
// for the next command to try again. Terminate of a gone instance is nil.
func terminateAll(ctx context.Context, p compute.Provider, ins []compute.Instance, before func(context.Context, compute.Instance) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 4)
	)
	for _, in := range ins {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := before(ctx, in)
			if err == nil {
				err = p.Terminate(ctx, in.ID)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", in.ID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
