package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// handoff is the strategy of a role whose data lives on volumes (deploy { volume "NAME" { ... } }),
// the default for such a role. Its states are bluegreen's; what differs is who holds the data:
//
//	planned -> booting -> checking -> ready -> cutting-over -> draining -> promoted -> retired
//
// booting: the role's volumes are found by their labels (fleet, role, volume), or created when the
// role has never had them, and green is launched with user-data that lists them, so drover-boot
// waits for them and starts no service. checking: on a first deploy the volumes are attached to
// green and the health gate runs as for bluegreen; otherwise only what can be checked without the
// data is (green runs, and its console shows drover-boot waiting for the volume). cutting-over
// (promote): green is recorded as the holder, blue is stopped (compute.Stopper: its services end
// with it, and the platform releases the device), each volume is detached (the provider confirms
// it), snapshotted when snapshot_before asks, and attached to green; green mounts it, starts its
// services and must pass the health gate; then traffic is cut over and watched (draining).
//
// A failure after blue was stopped, a failed watch, or a rollback: the rollout ends rolled back and
// the cleanup every command runs first (ensureVolumes) moves the volumes back: blue is given fresh
// user-data (a new boot credential where the role has secrets) and started while green still
// holds the volumes, and once its drover-boot waits for them, green is stopped, each volume
// detached and attached to blue; then traffic goes back to blue and green is destroyed. A
// rollback's downtime is thus the stop, detach, attach and blue's services' start, not blue's
// boot. After a green that failed with the data (the outage began at promote, and green serves
// nothing) green is stopped and the volumes detached first, then blue boots with the machine to
// itself and takes them: that outage holds blue's boot either way. Blue is kept stopped, not
// destroyed, for keep_old.
//
// The holder is written to the record (HandoffProgress.Holder) before every move, and each move is
// idempotent and starts with the provider's view of where the volume is, so a command killed at any
// point and run again converges with each volume attached to exactly one instance. A volume is
// never attached to two: compute.Volumes refuses an attach while it is attached elsewhere, and an
// attach follows only a detach the provider confirmed.
type handoff struct{ bluegreen }

// HandoffProgress is the handoff strategy's part of a rollout record.
type HandoffProgress struct {
	// Volumes are the role's volumes as this rollout found or made them.
	Volumes []HandoffVolume `json:"volumes,omitempty"`
	// Holder is the instance the volumes are on, or are being moved to: written before each move.
	Holder string `json:"holder,omitempty"`
	// Step is the last step of a move that was begun ("stop i-1", "detach vol-1", "attach vol-1
	// to i-2"), for people reading the record and for the crash hook of fault tests.
	Step string `json:"step,omitempty"`
	// Snapshots are the snapshots taken before the volumes went to green.
	Snapshots []string `json:"snapshots,omitempty"`
}

// HandoffVolume is one volume of the role.
type HandoffVolume struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	GuestPath string `json:"guest_path"`
}

// Labels of a role's volumes: the volume is found by them and never by the instance it is on.
const (
	LabelFleet  = "fleet"
	LabelVolume = "volume"
)

// HandoffCrashPoints are the handoff's steps that DROVER_TEST_CRASH_AFTER may name besides the
// states: the command stops right after the step is written to the record, before doing it.
var HandoffCrashPoints = []State{"handoff-holder", "handoff-userdata", "handoff-start", "handoff-stop", "handoff-detach", "handoff-snapshot", "handoff-attach"}

func (handoff) Name() string { return "handoff" }

// Rollback is bluegreen's, refused before anything is recorded when blue could not start again
// (checkRestartable): green keeps the volumes and serves.
func (h handoff) Rollback(ctx context.Context, s *session, r *Record) error {
	if r.Previous != "" {
		if err := s.checkRestartable(); err != nil {
			return err
		}
	}
	return h.bluegreen.Rollback(ctx, s, r)
}

// Validate refuses a deploy without volumes: handoff moves volumes, and a role with none is
// bluegreen's. (Volumes on several instances are refused by the fleet decoder.)
func (handoff) Validate(role *fleet.Role) []fleet.Refusal {
	if len(role.Deploy.Volumes) == 0 {
		return []fleet.Refusal{{Attribute: "strategy", Summary: "Strategy needs a volume",
			Detail: fmt.Sprintf("The handoff strategy moves role %q's volumes from blue to green, but its deploy block has no volume block: add one, or use \"bluegreen\".", role.Name)}}
	}
	return nil
}

// Admit refuses what Validate refuses and a count above one (a fleet built by hand); it keeps
// its progress in the record from the boot on.
func (h handoff) Admit(dep *fleet.Deploy, _ *Record) (Progress, error) {
	if len(dep.Volumes) == 0 {
		return Progress{}, errors.New("strategy \"handoff\" moves volumes, and the deploy block has none; use \"bluegreen\"")
	}
	if n := max(dep.Count, 1); n > 1 {
		return Progress{}, fmt.Errorf("strategy \"handoff\" moves a volume to one instance (count = %d); set count = 1", n)
	}
	return Progress{Handoff: &HandoffProgress{}}, nil
}

func (h handoff) Advance(ctx context.Context, s *session, r *Record, goal State) (bool, error) {
	if r.State.Terminal() || r.State.rank() >= goal.rank() {
		if r.State == Promoted {
			return true, s.finishPromoted(ctx, r)
		}
		return true, nil
	}
	switch r.State {
	case Planned:
		return false, s.move(ctx, r, Booting, fmt.Sprintf("finding the role's volumes and launching a green instance on %s", r.Compute), nil)
	case Booting:
		if err := s.checkRestartable(); err != nil {
			return false, err
		}
		if err := s.findVolumes(ctx, r); err != nil {
			return false, err
		}
		return false, s.boot(ctx, r)
	case Checking:
		if r.Previous == "" {
			return false, s.firstAttach(ctx, r)
		}
		return false, s.checkWaiting(ctx, r)
	case Ready:
		return false, s.beginCutover(ctx, r)
	case CuttingOver:
		return false, s.handOver(ctx, r)
	case Draining:
		return false, s.watch(ctx, r)
	}
	return false, fmt.Errorf("rollout: role %q: rollout %s is %s, which handoff does not move from", r.Role, r.ID, r.State)
}

func (handoff) Plan(p *planner) {
	dep := p.dep
	names := make([]string, len(dep.Volumes))
	for i, v := range dep.Volumes {
		names[i] = fmt.Sprintf("%s (%dGiB on %s)", v.Name, v.SizeGiB, v.Mount)
	}
	vols := strings.Join(names, ", ")
	if p.live == nil {
		p.add("volumes", p.done(Booting), "find volume(s) %s by labels, or create them blank", vols)
		p.add("boot", p.done(Booting), "boot 1 green instance of image %s on compute %q, its user-data listing the volume(s)", p.img.Short, dep.Compute)
		p.add("attach", p.done(Checking), "attach the volume(s) to green: drover-boot formats a blank one, mounts it, starts the services")
		for _, hc := range dep.Health {
			p.add("health", p.done(Checking), "check green: %s (every %s, %d in a row, within %s)", health.Describe(hc), hc.Interval, hc.Healthy, hc.Deadline)
		}
	} else {
		p.add("volumes", p.done(Booting), "find volume(s) %s by labels (they hold the data of rollout %s)", vols, p.live.ID)
		p.add("boot", p.done(Booting), "boot 1 green instance of image %s on compute %q; drover-boot waits for the volume(s) and starts no service", p.img.Short, dep.Compute)
		p.add("check", p.done(Checking), "check green without the data: it runs and drover-boot waits for the volume(s)")
	}
	if dep.AutoPromote {
		p.add("promote", false, "promote at once (auto_promote)")
	} else {
		p.add("promote", false, "stop at ready; promote with: drover rollout promote %s", p.role)
	}
	if p.live != nil {
		p.add("stop", p.done(CuttingOver), "record green as the holder; stop blue (rollout %s): its services end, the role is unavailable from here", p.live.ID)
		p.add("detach", p.done(CuttingOver), "detach the volume(s) from blue, confirmed by the provider")
		for _, v := range dep.Volumes {
			if v.SnapshotBefore {
				p.add("snapshot", p.done(CuttingOver), "snapshot volume %s (snapshot_before)", v.Name)
			}
		}
		p.add("attach", p.done(CuttingOver), "attach the volume(s) to green; drover-boot mounts them and starts the services")
		for _, hc := range dep.Health {
			p.add("health", p.done(CuttingOver), "check green: %s (within %s); a failure starts blue again, waits for its boot, then moves the volume(s) back", health.Describe(hc), hc.Deadline)
		}
	}
	p.add("cutover", p.done(CuttingOver), "%s", p.cut.Step)
	watch := max(dep.Watch, dep.Cutover.Drain)
	if p.live == nil {
		p.add("watch", p.done(Draining), "watch %s: the same checks %s; a failure fails the rollout (first deploy: no blue)", watch, p.cut.Watch)
		return
	}
	p.add("watch", p.done(Draining), "watch %s: the same checks %s; a failure hands the volume(s) back to blue by itself", watch, p.cut.Watch)
	if dep.KeepOld > 0 {
		p.add("keep", false, "keep blue stopped for %s: drover rollout rollback %s starts it (fresh user-data) and waits for its boot while green serves, then hands the volume(s) back", dep.KeepOld, p.role)
	} else {
		p.add("keep", false, "destroy blue at once (keep_old is 0); the volume(s) stay with green")
	}
}

// firstAttach gives a first deploy's green its volumes, then runs the health gate on it.
func (s *session) firstAttach(ctx context.Context, r *Record) error {
	green, err := s.onlyInstance(ctx, r)
	if err != nil {
		return err
	}
	if err := s.moveVolumes(ctx, r, green.ID, false); err != nil {
		if f := bootFailure(err); f != nil { // drover-boot never waited for the volumes
			return s.fail(ctx, r, f)
		}
		return err
	}
	return s.check(ctx, r)
}

// checkWaiting is the gate of a green that has no data yet: it runs, and, where the provider shows
// a console, drover-boot says there that it waits for each volume. It gives up after the longest
// health deadline (at least 5 minutes): the green is then destroyed and blue keeps serving.
func (s *session) checkWaiting(ctx context.Context, r *Record) error {
	green, err := s.onlyInstance(ctx, r)
	if err != nil {
		return err
	}
	if green.Console == "" {
		s.step(r.ID, "check", fmt.Sprintf("%s runs; the provider shows no console, so drover-boot's wait is not seen", green.ID))
		return s.move(ctx, r, Ready, "green runs and waits for its volume(s)", nil)
	}
	if err := s.consoleWaits(ctx, green, r.Progress.Handoff.Volumes); err != nil {
		if f := bootFailure(err); f != nil {
			return s.fail(ctx, r, f)
		}
		return err
	}
	return s.move(ctx, r, Ready, fmt.Sprintf("green %s booted; drover-boot waits for its %d volume(s)", green.ID, len(r.Progress.Handoff.Volumes)), nil)
}

// handOver moves the volumes from blue to green, gates green, then cuts over. A first deploy's
// green has them since its checks, and only cuts over.
func (s *session) handOver(ctx context.Context, r *Record) error {
	green, err := s.onlyInstance(ctx, r)
	if err != nil {
		return err
	}
	if r.Previous == "" {
		return s.cutover(ctx, r)
	}
	start := time.Now()
	if err := s.moveVolumes(ctx, r, green.ID, true); err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrCrashed) {
			return err
		}
		return s.handBack(ctx, r, health.NewFailure("handoff", target(green), err.Error(), "moving the volume(s) to green failed"))
	}
	s.step(r.ID, "handoff", fmt.Sprintf("volume(s) on green %s in %s; waiting for it to mount them and pass its checks", green.ID, human(time.Since(start))))
	if len(s.checks) > 0 {
		gateStart := time.Now()
		err := health.Gate(ctx, s.checks, []health.Target{target(green)}, s.observer(r, "health"))
		var f *health.Failure
		if errors.As(err, &f) {
			return s.handBack(ctx, r, f)
		}
		if err != nil {
			return err
		}
		s.step(r.ID, "health", fmt.Sprintf("green %s passed %d check(s) %s after its volume(s) came", green.ID, len(s.checks), human(time.Since(gateStart))))
	}
	return s.cutover(ctx, r)
}

// handBack ends r rolled back after green failed with the data, then the cleanup moves the
// volumes back to blue and starts it, and destroys green.
func (s *session) handBack(ctx context.Context, r *Record, f *health.Failure) error {
	if err := s.move(ctx, r, RolledBack, "handoff failed: "+f.Error(), func(n *Record) { n.Health = f }); err != nil {
		return err
	}
	// Green never served (the outage began when blue was stopped): it is stopped before blue boots,
	// which then has the machine to itself, and the outage is no longer for it (see moveVolumesTo).
	s.holderFailed = true
	start := time.Now()
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	s.step(r.ID, "rollback", fmt.Sprintf("volume(s) back on blue (rollout %s), blue started, green destroyed in %s", r.Previous, human(time.Since(start))))
	return &endError{fmt.Errorf("rollout: role %q: rollout %s failed with the data, handed back to blue: %w", r.Role, r.ID, f)}
}

// onlyInstance is the running (or stopped) instance of a one-instance rollout.
func (s *session) onlyInstance(ctx context.Context, r *Record) (inst compute.Instance, err error) {
	ins, err := s.instancesOf(ctx, r, true)
	if err != nil {
		return inst, err
	}
	if len(ins) == 0 {
		return inst, fmt.Errorf("rollout: role %q: rollout %s has no instance left; roll back or abort it", r.Role, r.ID)
	}
	return ins[0], nil
}
