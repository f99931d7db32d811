package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// ErrUpToDate is wrapped by Start's error when the role already runs the image (not a failure: the
// CLI says so and exits 0). StartOptions.Force rolls out anyway.
var ErrUpToDate = errors.New("rollout: up to date")

// ErrInProgress is wrapped when another rollout of the role is in flight and must be promoted,
// rolled back or aborted first.
var ErrInProgress = errors.New("rollout: another rollout is in progress")

// StartOptions adjust Start.
type StartOptions struct {
	// Image is a catalog reference (ROLE@PREFIX, sha256:HEX, a hex prefix); "" is the role's newest.
	Image string
	// Force rolls out even when the role already runs the image (fresh machines of the same image).
	Force bool
	// AutoPromote overrides the deploy block's auto_promote when not nil.
	AutoPromote *bool
}

// Start boots green instances of the role's newest image (or opts.Image), health-checks them and
// stops at ready, or, with auto_promote, promotes at once (see Promote).
//
// Start is idempotent: when a rollout of the same image is in flight (a killed Start, say), it is
// resumed from its persisted state instead of starting another; Launch by token returns the
// instances it already made. A rollout of another image in flight is refused (ErrInProgress),
// except a promoted one, whose kept blue is then given up. When the role already runs the image,
// Start does nothing and returns the live rollout with an error wrapping ErrUpToDate.
//
// A green that fails its checks is never cut over: the rollout ends failed and its instances are
// destroyed; the error wraps the *health.Failure. When Start fails otherwise part way (a provider
// error), the rollout stays in its state, blue keeps serving, and running Start again resumes it.
func (c *Controller) Start(ctx context.Context, role string, opts StartOptions) (*Record, error) {
	return c.withRole(ctx, "start", role, func(ctx context.Context, s *session) (*Record, error) {
		img, err := c.resolveImage(role, opts.Image)
		if err != nil {
			return nil, err
		}
		auto := s.dep.AutoPromote
		if opts.AutoPromote != nil {
			auto = *opts.AutoPromote
		}
		if a := s.active(); a != nil {
			if a.Image.Identity == img.Identity {
				s.step(a.ID, "resume", fmt.Sprintf("resuming rollout %s of image %s from %s", a.ID, img.Short, a.State))
				return s.drive(ctx, a, goalOf(a))
			}
			if a.State != Promoted {
				return a, fmt.Errorf("%w: role %q: rollout %s of image %s is %s; promote, roll back or abort it before rolling out %s",
					ErrInProgress, role, a.ID, a.Image.Short, a.State, img.Short)
			}
			if _, err := s.strat.Admit(s.dep, a); err != nil {
				return a, fmt.Errorf("rollout: role %q: %w", role, err)
			}
			note := fmt.Sprintf("superseded by a rollout of image %s before keep_old ended: blue destroyed", img.Short)
			if err := s.move(ctx, a, Retired, note, nil); err != nil {
				return a, err
			}
			if err := s.cleanup(ctx); err != nil {
				return a, err
			}
		}
		if l := s.live(); l != nil && l.Image.Identity == img.Identity && !opts.Force {
			return l, fmt.Errorf("%w: role %q already runs image %s (rollout %s)", ErrUpToDate, role, img.Short, l.ID)
		}
		progress, err := s.strat.Admit(s.dep, s.live())
		if err != nil {
			return s.live(), fmt.Errorf("rollout: role %q: %w", role, err)
		}
		if progress.Handoff != nil { // refused before any record: blue could never start again
			if err := s.checkRestartable(); err != nil {
				return s.live(), err
			}
		}
		r, err := s.create(ctx, img, KindRollout, auto, progress)
		if err != nil {
			return r, err
		}
		return s.drive(ctx, r, goalOf(r))
	})
}

func goalOf(r *Record) State {
	if r.AutoPromote {
		return Promoted
	}
	return Ready
}

// drive moves r forward with its strategy from whatever state it is in until it reaches goal or an
// end. Each step persists its transition before its side effects, and each side effect is
// idempotent, so drive can be run again on a record a killed command left behind.
func (s *session) drive(ctx context.Context, r *Record, goal State) (*Record, error) {
	st, err := s.strategyFor(r)
	if err != nil {
		return r, fmt.Errorf("rollout: role %q: rollout %s: %w", r.Role, r.ID, err)
	}
	for {
		done, err := st.Advance(ctx, s, r, goal)
		if done {
			return r, err
		}
		if err != nil {
			if !errors.Is(err, ErrCrashed) && ctx.Err() == nil && !isEnd(err) {
				s.noteError(ctx, r, err)
			}
			return r, err
		}
	}
}

// endError is returned when a rollout reached failed or rolled-back on its own.
type endError struct{ err error }

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

func isEnd(err error) bool { var e *endError; return errors.As(err, &e) }

// boot launches every slot (Launch by token: a slot launched before is returned as it is), waits
// until they run, then moves to checking.
func (s *session) boot(ctx context.Context, r *Record) error {
	img, err := s.bootImage(ctx, r)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 4)
	)
	for slot := range r.Count {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.launch(ctx, r, img, slot)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ins, f, err := s.waitRunning(ctx, r)
	if err != nil {
		return err
	}
	if f != nil {
		return s.fail(ctx, r, f)
	}
	return s.move(ctx, r, Checking, fmt.Sprintf("%d green instance(s) running", len(ins)), func(n *Record) { n.Green = refs(ins) })
}

func (s *session) launch(ctx context.Context, r *Record, img compute.Image, slot int) error {
	spec := compute.Spec{
		Token: token(r, slot), Name: token(r, slot), Image: img, Ports: s.dep.Ports, CloudRole: s.dep.AWSIAMRole,
		Labels: map[string]string{LabelRole: r.Role, LabelColor: "green", LabelRollout: r.ID, LabelSlot: strconv.Itoa(slot)},
	}
	if s.c.opts.UserData != nil {
		ud, err := s.c.opts.UserData(ctx, r.Role, slot)
		if err != nil {
			return fmt.Errorf("rollout: role %q: user-data of slot %d: %w", r.Role, slot, err)
		}
		spec.UserData = ud
	}
	if err := s.credentialFor(ctx, r, slot, &spec); err != nil {
		return err
	}
	if err := s.volumeUserData(r, &spec); err != nil {
		return err
	}
	in, err := s.comp.Launch(ctx, spec)
	if err != nil {
		return fmt.Errorf("rollout: role %q: launching slot %d of rollout %s: %w", r.Role, slot, r.ID, err)
	}
	s.step(r.ID, "launch", fmt.Sprintf("slot %d: %s %s at %s", slot, in.ID, in.State, in.Address))
	return nil
}

// waitRunning polls the provider until every slot runs. An instance that died is a failure.
func (s *session) waitRunning(ctx context.Context, r *Record) ([]compute.Instance, *health.Failure, error) {
	deadline, poll := 5*time.Minute, 500*time.Millisecond
	for _, c := range s.checks {
		deadline, poll = max(deadline, c.Deadline), min(poll, c.Interval)
	}
	end := time.Now().Add(deadline)
	for {
		ins, err := s.instancesOf(ctx, r, false)
		if err != nil {
			return nil, nil, err
		}
		running := 0
		for _, in := range ins {
			switch in.State {
			case compute.Terminated:
				return nil, health.NewFailure("boot", target(in), "instance "+in.ID+" terminated while booting", "died"), nil
			case compute.Running:
				running++
			}
		}
		if running >= r.Count {
			return ins, nil, nil
		}
		if time.Now().After(end) {
			return nil, health.NewFailure("boot", health.Target{Name: r.ID},
				fmt.Sprintf("%d of %d instances running", running, r.Count), "deadline "+deadline.String()+" passed"), nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func target(in compute.Instance) health.Target {
	return health.Target{Name: in.ID, Addr: in.Address, Console: in.Console}
}

// check runs the health gate on every green; all pass: ready; one fails: failed, green destroyed.
func (s *session) check(ctx context.Context, r *Record) error {
	ins, err := s.instancesOf(ctx, r, false)
	if err != nil {
		return err
	}
	targets := make([]health.Target, 0, len(ins))
	for _, in := range ins {
		if in.State == compute.Terminated {
			return s.fail(ctx, r, health.NewFailure("boot", target(in), "instance "+in.ID+" terminated", "died"))
		}
		targets = append(targets, target(in))
	}
	if len(ins) < r.Count {
		return s.fail(ctx, r, health.NewFailure("boot", health.Target{Name: r.ID},
			fmt.Sprintf("%d of %d instances exist", len(ins), r.Count), "instances gone"))
	}
	if len(s.checks) == 0 {
		return s.move(ctx, r, Ready, "no health checks declared: green is ready once it runs", nil)
	}
	s.step(r.ID, "health", fmt.Sprintf("checking %d green instance(s) with %d check(s)", len(targets), len(s.checks)))
	err = health.Gate(ctx, s.checks, targets, s.observer(r, "health"))
	var f *health.Failure
	if errors.As(err, &f) {
		return s.fail(ctx, r, f)
	}
	if err != nil {
		return err
	}
	return s.move(ctx, r, Ready, fmt.Sprintf("every green passed %d check(s)", len(s.checks)), nil)
}

// observer reports passes and failures of probes as steps.
func (s *session) observer(r *Record, step string) health.Observer {
	return func(t health.Target, c health.Check, streak int, err error) {
		switch {
		case err != nil:
			s.step(r.ID, step, fmt.Sprintf("%s on %s: %v", c.Name, t.Name, err))
		case step == "health" && streak == c.Healthy:
			s.step(r.ID, step, fmt.Sprintf("%s on %s: healthy (%d in a row)", c.Name, t.Name, streak))
		}
	}
}

// fail ends r as failed with the failure recorded, then destroys its instances (cleanup). The error
// it returns wraps f.
func (s *session) fail(ctx context.Context, r *Record, f *health.Failure) error {
	if err := s.move(ctx, r, Failed, f.Error(), func(n *Record) { n.Health = f }); err != nil {
		return err
	}
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	return &endError{fmt.Errorf("rollout: role %q: rollout %s failed, green destroyed, traffic untouched: %w", r.Role, r.ID, f)}
}
