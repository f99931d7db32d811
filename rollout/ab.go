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

// ab is the strategy of a device updated in place (a Raspberry Pi's A/B card, compute.Slots): blue
// is the slot the device has committed, green the other one. It walks bluegreen's states:
//
//	planned -> booting -> checking -> ready -> cutting-over -> draining -> promoted -> retired
//
// booting: on each host in turn, the other slot is written from the image's update bundle (only the
// blocks that differ are sent; the device verifies them), a one-time trial boot of it is armed and
// the device is rebooted; drover waits for it to answer with a new boot. A device that comes back
// on its committed slot fell back by itself (the trial hung and the watchdog reset it, or it did not
// boot): the rollout ends rolled back. checking: the deploy's checks run against each device; a
// failure reboots it, which boots the committed slot again (the trial flag is spent), and the
// rollout ends rolled back. cutting-over (promote, or auto_promote): each device commits the slot
// it runs. draining: the checks are watched; a failure goes back as a rollback does. The previous
// image stays in the other slot until the next update, so keep_old does not apply.
//
// A rollback before the commit reboots each device that runs its trial (it comes back on its
// committed slot). After the commit (reverse), each device tries its previous slot again and commits
// it: arm, reboot, and commit once it runs. After the rollout retired, drover rollout rollback
// deploys the previous image as a new rollout: the slot that held it is written again, which sends
// nothing that the slot still holds.
//
// Each step on a host is written to the record (ABHost.Step) before it is done, and each is
// idempotent or checked against the device's status first, so a command killed at any point and run
// again converges. A device never runs a slot it was not asked to run: the trial is armed only on a
// slot whose write verified, and only the running slot is ever committed.
type ab struct{}

// ABProgress is the ab strategy's part of a rollout record.
type ABProgress struct {
	// Hosts are the devices updated, in order, with the slot each had committed (From) and the slot
	// written (To).
	Hosts []ABHost `json:"hosts,omitempty"`
	// Reverse is set when the rollout goes back after a commit: each device tries From again and
	// commits it.
	Reverse bool `json:"reverse,omitempty"`
	// Failure is why it goes back by itself (the watch failed); "" when asked to.
	Failure string `json:"failure,omitempty"`
}

// ABHost is one device of an ab rollout.
type ABHost struct {
	Host string `json:"host"`
	From string `json:"from"`
	To   string `json:"to"`
	// Step is the last step begun on the host, written before it is done: write, trial, reboot, up
	// (the trial answered), commit, committed; back-trial, back-reboot, back-commit, back on the
	// way to From.
	Step string `json:"step,omitempty"`
	// BootID is the device's boot before the reboot in flight: an answer with another is the new boot.
	BootID string `json:"boot_id,omitempty"`
	// What the update took, for people and bench/results.md.
	Sent      int64    `json:"sent,omitempty"`
	SlotBytes int64    `json:"slot_bytes,omitempty"`
	Write     Duration `json:"write,omitempty"`
	Boot      Duration `json:"boot,omitempty"`   // from the reboot to the device answering again
	Health    Duration `json:"health,omitempty"` // the checks of the trial
}

// ABCrashPoints are the ab strategy's steps that DROVER_TEST_CRASH_AFTER may name besides the states:
// the command stops right after the step is written to the record, before doing it.
var ABCrashPoints = []State{"ab-write", "ab-trial", "ab-reboot", "ab-up", "ab-commit", "ab-committed", "ab-back-trial", "ab-back-reboot", "ab-back-commit", "ab-back"}

func (ab) Name() string { return "ab" }

// Validate refuses what the ab strategy cannot update in place: an image that is not an SD card, a
// count, a cutover (the device keeps its address) and volumes (its data partition stays on the card).
func (ab) Validate(role *fleet.Role) []fleet.Refusal {
	var out []fleet.Refusal
	dep := role.Deploy
	if role.Image.Builder != "rpi" {
		out = append(out, fleet.Refusal{Attribute: "strategy", Summary: "Strategy needs an A/B card",
			Detail: fmt.Sprintf("Strategy \"ab\" writes the other slot of a device's A/B card, and role %q is built with builder %q, whose image is a VM disk: set builder = \"rpi\" in its image block, or use \"bluegreen\".", role.Name, role.Image.Builder)})
	}
	if dep.Count > 1 {
		out = append(out, fleet.Refusal{Attribute: "count", Summary: "Strategy updates every host",
			Detail: fmt.Sprintf("Strategy \"ab\" updates every host of the compute block in place; count = %d does not apply: remove it.", dep.Count)})
	}
	if dep.Cutover.Type != "" && dep.Cutover.Type != "none" {
		out = append(out, fleet.Refusal{Attribute: "strategy", Summary: "Strategy moves no traffic",
			Detail: fmt.Sprintf("Strategy \"ab\" updates a device in place, which keeps its address: the cutover %q has nothing to move. Remove the cutover block.", dep.Cutover.Type)})
	}
	if len(dep.Volumes) > 0 {
		out = append(out, fleet.Refusal{Attribute: "strategy", Summary: "Strategy keeps the data on the card",
			Detail: "Strategy \"ab\" keeps a device's data on its card's data partition, which every slot mounts: remove the volume blocks."})
	}
	return out
}

// Admit keeps the hosts in the record once the rollout reads them (planned -> booting).
func (ab) Admit(dep *fleet.Deploy, _ *Record) (Progress, error) {
	if n := max(dep.Count, 1); n > 1 {
		return Progress{}, fmt.Errorf("strategy \"ab\" updates every host of the compute block (count = %d); remove count", n)
	}
	return Progress{AB: &ABProgress{}}, nil
}

func (ab) Plan(p *planner) {
	p.add("write", p.done(Booting), "on each device of compute %q in turn: write the slot it has not committed from image %s's update bundle (only the blocks that differ are sent), verify it on the device, arm a one-time trial boot of it and reboot", p.dep.Compute, p.img.Short)
	p.add("trial", p.done(Booting), "wait for the device to answer from the new slot; one that comes back on its committed slot fell back by itself (hang, watchdog): rolled back")
	if len(p.dep.Health) == 0 {
		p.add("health", p.done(Checking), "no health checks declared: the trial is ready once it answers")
	}
	for _, hc := range p.dep.Health {
		p.add("health", p.done(Checking), "check each device: %s (every %s, timeout %s, %d in a row, within %s); a failure reboots it into its committed slot", health.Describe(hc), hc.Interval, hc.Timeout, hc.Healthy, hc.Deadline)
	}
	if p.dep.AutoPromote {
		p.add("promote", false, "commit at once (auto_promote)")
	} else {
		p.add("promote", false, "stop at ready, the device on trial; commit with: drover rollout promote %s", p.role)
	}
	p.add("commit", p.done(CuttingOver), "each device commits the slot it runs (autoboot.txt rewritten in one sector)")
	p.add("watch", p.done(Draining), "watch %s: the same checks; a failure tries the previous slot again and commits it", p.dep.Watch)
	p.add("keep", false, "the previous image stays in the other slot until the next update (keep_old does not apply)")
}

// Advance drives an ab rollout one persisted step at a time.
func (st ab) Advance(ctx context.Context, s *session, r *Record, goal State) (bool, error) {
	ap := r.Progress.AB
	if ap == nil {
		return true, fmt.Errorf("rollout: role %q: rollout %s of strategy ab has no ab progress", r.Role, r.ID)
	}
	if ap.Reverse && !r.State.Terminal() {
		return false, s.abReverse(ctx, r)
	}
	if r.State.Terminal() || r.State.rank() >= goal.rank() {
		if r.State == Promoted {
			return true, s.move(ctx, r, Retired, "the previous image stays in each device's other slot until the next update", nil)
		}
		return true, nil
	}
	switch r.State {
	case Planned:
		return false, s.abPlan(ctx, r)
	case Booting:
		return false, s.abBoot(ctx, r)
	case Checking:
		return false, s.abCheck(ctx, r)
	case Ready:
		return false, s.move(ctx, r, CuttingOver, fmt.Sprintf("committing the new slot on %d device(s)", len(ap.Hosts)), nil)
	case CuttingOver:
		return false, s.abCommit(ctx, r)
	case Draining:
		return false, s.abWatch(ctx, r)
	}
	return false, fmt.Errorf("rollout: role %q: rollout %s is %s, which ab does not move from", r.Role, r.ID, r.State)
}

// Rollback before the commit ends the rollout aborted, and the cleanup reboots each device that runs
// its trial (ensureSlots); after it, each device goes back to its previous slot (reverse).
func (ab) Rollback(ctx context.Context, s *session, r *Record) error {
	if !r.State.CutOver() {
		return s.abort(ctx, r, "rolled back before the commit")
	}
	if !r.Progress.AB.Reverse {
		if err := s.saveAB(ctx, r, "rollback", "going back: each device tries its previous slot again and commits it", func(p *ABProgress) { p.Reverse = true }); err != nil {
			return err
		}
	}
	_, err := s.drive(ctx, r, Retired)
	return err
}

// slots is the role's compute provider as compute.Slots.
func (s *session) slots() (compute.Slots, error) {
	sl, ok := s.comp.(compute.Slots)
	if !ok {
		return nil, fmt.Errorf("rollout: role %q: compute %q does not update devices in place (it does not implement compute.Slots): strategy \"ab\" needs a compute block of type \"device\"", s.role.Name, s.dep.Compute)
	}
	return sl, nil
}

// abPlan reads each host's slots, refuses a device that runs a trial of something else, and records
// the slot to write on each (the one not committed) with the transition to booting.
func (s *session) abPlan(ctx context.Context, r *Record) error {
	sl, err := s.slots()
	if err != nil {
		return err
	}
	ins, err := s.comp.Instances(ctx, nil)
	if err != nil {
		return fmt.Errorf("rollout: role %q: listing the devices of compute %q: %w", r.Role, s.dep.Compute, err)
	}
	var hosts []ABHost
	seen := map[string]bool{}
	for _, in := range ins {
		h := in.Labels["host"]
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		st, err := sl.SlotStatus(ctx, h)
		if err != nil {
			return fmt.Errorf("rollout: role %q: %w", r.Role, err)
		}
		if st.Trial {
			return fmt.Errorf("rollout: role %q: device %s runs slot %s on trial (slot %s is committed): wait until it is committed or rebooted, or run drover rollout rollback %s", r.Role, h, st.Booted, st.Committed, r.Role)
		}
		hosts = append(hosts, ABHost{Host: h, From: st.Committed, To: otherSlot(st.Committed)})
	}
	if len(hosts) == 0 {
		return fmt.Errorf("rollout: role %q: compute %q lists no device", r.Role, s.dep.Compute)
	}
	var names []string
	for _, h := range hosts {
		names = append(names, fmt.Sprintf("%s slot %s", h.Host, h.To))
	}
	return s.move(ctx, r, Booting, "writing "+strings.Join(names, ", "), func(n *Record) { n.Progress.AB.Hosts = hosts })
}

func otherSlot(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

// abBoot takes each host through write, trial, reboot and up; then checking. A host that came back
// on its committed slot ends the rollout rolled back.
func (s *session) abBoot(ctx context.Context, r *Record) error {
	for i := range r.Progress.AB.Hosts {
		fellBack, err := s.abTrialHost(ctx, r, i)
		if err != nil {
			return err
		}
		if fellBack != "" {
			return s.abEnd(ctx, r, health.NewFailure("boot", health.Target{Name: r.Progress.AB.Hosts[i].Host}, fellBack, "fell back"))
		}
	}
	return s.move(ctx, r, Checking, fmt.Sprintf("every device runs its new slot on trial (%s)", abSummary(r.Progress.AB.Hosts)), nil)
}

// abEnd ends r rolled back after a device fell back or failed its checks, once every device runs
// its committed slot again (the cleanup reboots those on trial).
func (s *session) abEnd(ctx context.Context, r *Record, f *health.Failure) error {
	if err := s.move(ctx, r, RolledBack, f.Error()+": each device back on its committed slot", func(n *Record) { n.Health = f }); err != nil {
		return err
	}
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	return &endError{fmt.Errorf("rollout: role %q: rollout %s rolled back, each device on its committed slot: %w", r.Role, r.ID, f)}
}

// abCheck runs the health gate against every device; a failure ends the rollout rolled back.
func (s *session) abCheck(ctx context.Context, r *Record) error {
	targets, err := s.abTargets(ctx, r)
	if err != nil {
		return err
	}
	if len(s.checks) == 0 {
		return s.move(ctx, r, Ready, "no health checks declared: the trial is ready once it answers", nil)
	}
	s.step(r.ID, "health", fmt.Sprintf("checking %d device(s) with %d check(s)", len(targets), len(s.checks)))
	start := time.Now()
	err = health.Gate(ctx, s.checks, targets, s.observer(r, "health"))
	var f *health.Failure
	if errors.As(err, &f) {
		return s.abEnd(ctx, r, f)
	}
	if err != nil {
		return err
	}
	took := Duration(time.Since(start))
	return s.move(ctx, r, Ready, fmt.Sprintf("every device passed %d check(s) on its trial", len(s.checks)), func(n *Record) {
		for i := range n.Progress.AB.Hosts {
			n.Progress.AB.Hosts[i].Health = took
		}
	})
}

// abTargets are the devices as health targets: the running slot of each host.
func (s *session) abTargets(ctx context.Context, r *Record) ([]health.Target, error) {
	var out []health.Target
	for _, h := range r.Progress.AB.Hosts {
		ins, err := s.comp.Instances(ctx, compute.Selector{"host": h.Host, "running": "true"})
		if err != nil {
			return nil, fmt.Errorf("rollout: role %q: reading device %s: %w", r.Role, h.Host, err)
		}
		if len(ins) != 1 {
			return nil, fmt.Errorf("rollout: role %q: device %s reports %d running slots", r.Role, h.Host, len(ins))
		}
		out = append(out, target(ins[0]))
	}
	return out, nil
}

// abCommit commits the new slot on each device (each running it), then draining.
func (s *session) abCommit(ctx context.Context, r *Record) error {
	sl, err := s.slots()
	if err != nil {
		return err
	}
	for i, h := range r.Progress.AB.Hosts {
		if h.Step != "committed" {
			if err := s.abStep(ctx, r, i, "commit", fmt.Sprintf("%s: committing slot %s", h.Host, h.To), nil); err != nil {
				return err
			}
			if err := sl.CommitSlot(ctx, h.Host, h.To); err != nil {
				return fmt.Errorf("rollout: role %q: %w", r.Role, err)
			}
			if err := s.abStep(ctx, r, i, "committed", fmt.Sprintf("%s: slot %s committed", h.Host, h.To), nil); err != nil {
				return err
			}
		}
	}
	return s.move(ctx, r, Draining, fmt.Sprintf("slot committed on %d device(s)", len(r.Progress.AB.Hosts)), nil)
}

// abWatch runs the checks for the watch window; a failure goes back to the previous slots.
func (s *session) abWatch(ctx context.Context, r *Record) error {
	window := time.Duration(r.Watch)
	if since := s.c.now().Sub(r.At(Draining)); since > 0 {
		window -= since
	}
	targets, err := s.abTargets(ctx, r)
	if err != nil {
		return err
	}
	err = s.watchFor(ctx, r, targets, window, "device(s)")
	var f *health.Failure
	if errors.As(err, &f) {
		return s.saveAB(ctx, r, "watch", "watch failed: "+f.Error()+"; each device goes back to its previous slot", func(p *ABProgress) {
			p.Reverse, p.Failure = true, f.Error()
		})
	}
	if err != nil {
		return err
	}
	return s.move(ctx, r, Promoted, "watch passed", func(n *Record) { n.KeepUntil = s.c.now() })
}

// saveAB persists a change of r's ab progress, reports it as a step and honours the crash hook.
func (s *session) saveAB(ctx context.Context, r *Record, step, note string, mutate func(*ABProgress)) error {
	next := r.clone()
	mutate(next.Progress.AB)
	next.Updated = s.c.now()
	if err := saveRecord(ctx, s.c.opts.Store, next); err != nil {
		return err
	}
	*r = *next
	s.step(r.ID, step, note)
	return nil
}

// abStep persists host i's step (with mutate applied) before it is done, then honours the crash hook
// named after it.
func (s *session) abStep(ctx context.Context, r *Record, i int, step, note string, mutate func(*ABHost)) error {
	err := s.saveAB(ctx, r, "ab", note, func(p *ABProgress) {
		p.Hosts[i].Step = step
		if mutate != nil {
			mutate(&p.Hosts[i])
		}
	})
	if err != nil {
		return err
	}
	return s.c.crashPoint(State("ab-" + step))
}

func abSummary(hosts []ABHost) string {
	var parts []string
	for _, h := range hosts {
		parts = append(parts, fmt.Sprintf("%s: %s sent of %s in %s, up in %s", h.Host, bytesText(h.Sent), bytesText(h.SlotBytes), human(time.Duration(h.Write)), human(time.Duration(h.Boot))))
	}
	return strings.Join(parts, "; ")
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
