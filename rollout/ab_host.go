package rollout

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// The steps of one device in an ab rollout. Each is written to the record before it is done, and a
// command resumed at a step first asks the device where it is, so none is done twice in a way that
// matters: a write is idempotent (the device keeps what verified), an armed trial is armed again,
// and a reboot whose new boot was seen is not asked again. A reboot asked again while the first was
// still going down can only spend the trial flag early: the device then comes back on its committed
// slot and the rollout ends rolled back, never on a slot nobody chose.

// abBootWait is how long a device may take from a reboot to answering again: a Pi boots in under a
// minute, an emulated one on TCG in a few (and a hung trial needs the watchdog's timeout besides).
const abBootWait = 10 * time.Minute

// abPoll is how often a rebooting device is asked at most whether it is back: the first asks come
// sooner (from 100 ms, doubling), for a device that answers from a new boot at once.
const abPoll = 2 * time.Second

// bundleOf is the update bundle of r's image, for writing a slot.
func (s *session) bundleOf(r *Record) (string, error) {
	m, err := s.c.opts.Catalog.Get(r.Image.Identity)
	if err != nil {
		return "", fmt.Errorf("rollout: role %q: image %s: %w (rebuild it with drover build %s)", r.Role, r.Image.Short, err, r.Role)
	}
	if m.Card == nil || m.Card.Bundle == "" {
		return "", fmt.Errorf("rollout: role %q: image %s has no update bundle (it is not an SD card of the \"rpi\" builder)", r.Role, r.Image.Short)
	}
	return filepath.Join(s.c.opts.Catalog.ImageDir(r.Image.Identity), m.Card.Bundle), nil
}

// abTrialHost takes host i from its recorded step through write, trial, reboot and up. It returns
// why the device fell back when it came back on its committed slot instead of the trial.
func (s *session) abTrialHost(ctx context.Context, r *Record, i int) (string, error) {
	sl, err := s.slots()
	if err != nil {
		return "", err
	}
	h := r.Progress.AB.Hosts[i]
	switch h.Step {
	case "", "write", "trial":
		if h.Step != "trial" {
			bundle, err := s.bundleOf(r)
			if err != nil {
				return "", err
			}
			if err := s.abStep(ctx, r, i, "write", fmt.Sprintf("%s: writing slot %s from image %s (only the blocks that differ)", h.Host, h.To, r.Image.Short), nil); err != nil {
				return "", err
			}
			w, err := sl.WriteSlot(ctx, h.Host, h.To, bundle)
			if err != nil {
				return "", fmt.Errorf("rollout: role %q: writing slot %s of %s (run the command again: what verified is kept): %w", r.Role, h.To, h.Host, err)
			}
			note := fmt.Sprintf("%s: slot %s written and verified: %s sent of %s in %s", h.Host, h.To, bytesText(w.Sent), bytesText(w.SlotBytes), human(w.Elapsed))
			if err := s.abStep(ctx, r, i, "trial", note, func(x *ABHost) { x.Sent, x.SlotBytes, x.Write = w.Sent, w.SlotBytes, Duration(w.Elapsed) }); err != nil {
				return "", err
			}
		}
		if err := s.abArmAndReboot(ctx, r, i, sl, h.To, "reboot"); err != nil {
			return "", err
		}
	case "reboot":
		if err := s.abRebootAgain(ctx, r, i, sl, h.To); err != nil {
			return "", err
		}
	}
	h = r.Progress.AB.Hosts[i]
	st, took, err := s.abWaitBoot(ctx, r, sl, h)
	if err != nil {
		return "", err
	}
	switch st.Booted {
	case h.To:
		if h.Step != "up" {
			err = s.abStep(ctx, r, i, "up", fmt.Sprintf("%s: slot %s runs on trial, up %s after the reboot", h.Host, h.To, human(took)), func(x *ABHost) { x.Boot = Duration(took) })
		}
		return "", err
	case h.From:
		return fmt.Sprintf("device %s came back on its committed slot %s, not on the trial of slot %s: the trial did not come up (a hang the watchdog reset, or a failed boot)", h.Host, h.From, h.To), nil
	}
	return "", fmt.Errorf("rollout: role %q: device %s runs slot %q, neither %s nor %s", r.Role, h.Host, st.Booted, h.From, h.To)
}

// abArmAndReboot arms a trial of slot on host i, records the boot it runs now under step, and asks
// for the reboot.
func (s *session) abArmAndReboot(ctx context.Context, r *Record, i int, sl compute.Slots, slot, step string) error {
	h := r.Progress.AB.Hosts[i]
	if err := sl.ArmTrial(ctx, h.Host, slot); err != nil {
		return fmt.Errorf("rollout: role %q: arming a trial of slot %s on %s: %w", r.Role, slot, h.Host, err)
	}
	return s.abReboot(ctx, r, i, sl, step, fmt.Sprintf("%s: trial of slot %s armed; rebooting", h.Host, slot))
}

// abReboot records the device's current boot under step, then asks for the reboot.
func (s *session) abReboot(ctx context.Context, r *Record, i int, sl compute.Slots, step, note string) error {
	h := r.Progress.AB.Hosts[i]
	st, err := sl.SlotStatus(ctx, h.Host)
	if err != nil {
		return fmt.Errorf("rollout: role %q: %w", r.Role, err)
	}
	if st.BootID == "" {
		return fmt.Errorf("rollout: role %q: device %s does not report its boot ID, so a reboot could not be told from no reboot: update drover-boot on it", r.Role, h.Host)
	}
	if err := s.abStep(ctx, r, i, step, note, func(x *ABHost) { x.BootID = st.BootID }); err != nil {
		return err
	}
	if err := sl.Reboot(ctx, h.Host); err != nil {
		return fmt.Errorf("rollout: role %q: rebooting %s: %w", r.Role, h.Host, err)
	}
	return nil
}

// abRebootAgain resumes a reboot step: a device still in the recorded boot is armed (for a trial of
// slot) and rebooted again; one in another boot is left to abWaitBoot.
func (s *session) abRebootAgain(ctx context.Context, r *Record, i int, sl compute.Slots, slot string) error {
	h := r.Progress.AB.Hosts[i]
	st, err := sl.SlotStatus(ctx, h.Host)
	if err != nil || st.BootID != h.BootID {
		return nil // down or rebooted: the wait tells which
	}
	if slot != "" && st.Committed != slot {
		if err := sl.ArmTrial(ctx, h.Host, slot); err != nil {
			return fmt.Errorf("rollout: role %q: arming a trial of slot %s on %s again: %w", r.Role, slot, h.Host, err)
		}
	}
	s.step(r.ID, "ab", fmt.Sprintf("%s: still in the boot before the reboot; rebooting again", h.Host))
	if err := sl.Reboot(ctx, h.Host); err != nil {
		return fmt.Errorf("rollout: role %q: rebooting %s: %w", r.Role, h.Host, err)
	}
	return nil
}

// abWaitBoot waits until host h answers from a boot other than h.BootID.
func (s *session) abWaitBoot(ctx context.Context, r *Record, sl compute.Slots, h ABHost) (compute.SlotStatus, time.Duration, error) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, abBootWait)
	defer cancel()
	var last error
	wait := 100 * time.Millisecond
	for {
		st, err := sl.SlotStatus(wctx, h.Host)
		if err == nil && st.BootID != h.BootID {
			return st, time.Since(start), nil
		}
		if err != nil {
			last = err
		}
		wait = min(2*wait, abPoll)
		if err := sleepCtx(wctx, wait); err != nil {
			if ctx.Err() != nil {
				return st, 0, ctx.Err()
			}
			why := "it still answers from the boot before"
			if last != nil {
				why = "last: " + last.Error()
			}
			return st, 0, fmt.Errorf("rollout: role %q: device %s did not come back within %s of its reboot (%s); run the command again once it answers", r.Role, h.Host, abBootWait, why)
		}
	}
}

// abReverse takes every device back to its previous slot, committed, then ends r rolled back.
func (s *session) abReverse(ctx context.Context, r *Record) error {
	for i := range r.Progress.AB.Hosts {
		if err := s.abBackHost(ctx, r, i); err != nil {
			return err
		}
	}
	ap := r.Progress.AB
	const back = "each device runs its previous slot again, committed"
	note := "rolled back after the commit: " + back
	if ap.Failure != "" {
		note = "watch failed: " + ap.Failure + "; " + back
	}
	if err := s.move(ctx, r, RolledBack, note, nil); err != nil {
		return err
	}
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	if ap.Failure != "" {
		return &endError{fmt.Errorf("rollout: role %q: rollout %s failed its watch and went back to the previous slot: %s", r.Role, r.ID, ap.Failure)}
	}
	return nil
}

// abBackHost makes host i run its From slot, committed: a device still on its trial (never
// committed) is rebooted; one that committed To tries From again, then commits it.
func (s *session) abBackHost(ctx context.Context, r *Record, i int) error {
	sl, err := s.slots()
	if err != nil {
		return err
	}
	h := r.Progress.AB.Hosts[i]
	if h.Step == "back" {
		return nil
	}
	switch h.Step {
	case "back-reboot":
		if err := s.abRebootAgain(ctx, r, i, sl, h.From); err != nil {
			return err
		}
	case "back-commit":
	default:
		st, err := sl.SlotStatus(ctx, h.Host)
		if err != nil {
			return fmt.Errorf("rollout: role %q: %w", r.Role, err)
		}
		switch {
		case st.Committed == h.From && st.Booted == h.From:
			return s.abStep(ctx, r, i, "back", fmt.Sprintf("%s: runs slot %s, committed", h.Host, h.From), nil)
		case st.Committed == h.From:
			if err := s.abReboot(ctx, r, i, sl, "back-reboot", fmt.Sprintf("%s: rebooting out of the trial of slot %s into committed slot %s", h.Host, h.To, h.From)); err != nil {
				return err
			}
		default:
			if err := s.abStep(ctx, r, i, "back-trial", fmt.Sprintf("%s: trying previous slot %s again", h.Host, h.From), nil); err != nil {
				return err
			}
			if err := s.abArmAndReboot(ctx, r, i, sl, h.From, "back-reboot"); err != nil {
				return err
			}
		}
	}
	h = r.Progress.AB.Hosts[i]
	st, err := sl.SlotStatus(ctx, h.Host)
	if err != nil || h.Step == "back-reboot" {
		if st, _, err = s.abWaitBoot(ctx, r, sl, h); err != nil {
			return err
		}
	}
	if st.Booted != h.From {
		return fmt.Errorf("rollout: role %q: device %s came back on slot %s, not on its previous slot %s: the previous image did not come up; it runs slot %s (committed %s)", r.Role, h.Host, st.Booted, h.From, st.Booted, st.Committed)
	}
	if st.Committed != h.From {
		if err := s.abStep(ctx, r, i, "back-commit", fmt.Sprintf("%s: previous slot %s runs; committing it", h.Host, h.From), nil); err != nil {
			return err
		}
		if err := sl.CommitSlot(ctx, h.Host, h.From); err != nil {
			return fmt.Errorf("rollout: role %q: %w", r.Role, err)
		}
	}
	return s.abStep(ctx, r, i, "back", fmt.Sprintf("%s: runs slot %s, committed", h.Host, h.From), nil)
}

// ensureSlots makes each device of the newest rollout, when it ended without its slot committed
// (aborted, rolled back, failed), run its committed slot with no trial armed: one on its trial is
// rebooted, and one whose trial may be armed but not booted yet (the command stopped between arming
// and rebooting) is rebooted too, and again if that boot was the trial. It is part of every
// command's cleanup, so an abort or a fallback killed part way is finished by the next command.
func (s *session) ensureSlots(ctx context.Context) error {
	l := s.latest()
	if l == nil || l.Progress.AB == nil || !l.State.Terminal() || l.State == Retired {
		return nil
	}
	sl, err := s.slots()
	if err != nil {
		return err
	}
	for i, h := range l.Progress.AB.Hosts {
		if h.Step == "" || h.Step == "write" || h.Step == "back" {
			continue // nothing armed or booted on this device
		}
		st, err := sl.SlotStatus(ctx, h.Host)
		if err != nil {
			return fmt.Errorf("rollout: role %q: %w", l.Role, err)
		}
		mayBeArmed := h.Step == "trial" || (h.Step == "reboot" || h.Step == "back-reboot") && st.BootID == h.BootID
		if !st.Trial && !mayBeArmed {
			if err := s.abStep(ctx, l, i, "back", fmt.Sprintf("%s: runs committed slot %s", h.Host, st.Committed), nil); err != nil {
				return err
			}
			continue
		}
		for range 2 { // a trial armed and not yet booted takes one boot to spend
			if err := s.abReboot(ctx, l, i, sl, "back-reboot", fmt.Sprintf("%s: rebooting into committed slot %s (slot %s may be on trial or armed for one)", h.Host, st.Committed, h.To)); err != nil {
				return err
			}
			if st, _, err = s.abWaitBoot(ctx, l, sl, l.Progress.AB.Hosts[i]); err != nil {
				return err
			}
			if !st.Trial {
				break
			}
		}
		if st.Trial {
			return fmt.Errorf("rollout: role %q: device %s still runs slot %s on trial after two reboots", l.Role, h.Host, st.Booted)
		}
		if err := s.abStep(ctx, l, i, "back", fmt.Sprintf("%s: back on committed slot %s", h.Host, st.Committed), nil); err != nil {
			return err
		}
	}
	return nil
}
