package rollout_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout"
)

func TestLockRefusesSecondRollout(t *testing.T) {
	l := newLab(t, webRole(func(d *fleet.Deploy) { d.Health[0].Deadline = 10 * time.Second }))
	img := l.build("web")
	l.setHealthy(img, false)
	first := l.controller()
	done := make(chan error, 1)
	go func() {
		_, err := first.Start(context.Background(), "web", rollout.StartOptions{})
		done <- err
	}()
	// Wait until the first is checking (holding the lock), then try a second drover.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(l.transitions(), rollout.Checking) {
		if time.Now().After(deadline) {
			t.Fatal("first rollout never reached checking")
		}
		time.Sleep(5 * ms)
	}
	second := l.controller(func(o *rollout.Options) { o.Owner = "bob@elsewhere pid 4242" })
	_, err := second.Start(t.Context(), "web", rollout.StartOptions{})
	var locked *rollout.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second start: %v, want a LockedError", err)
	}
	t.Logf("refused: %v", err)
	if locked.Lease.Owner != "tester@lab pid 1" || !strings.Contains(err.Error(), "tester@lab pid 1") || !strings.Contains(err.Error(), "held for ") {
		t.Errorf("error %q does not name the holder and its age", err)
	}
	l.setHealthy(img, true)
	if err := <-done; err != nil {
		t.Fatalf("first start: %v", err)
	}
	// Released: the second may go now.
	if _, err := second.Abort(t.Context(), "web"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestLockOfDeadLocalProcessIsTakenOver(t *testing.T) {
	l := newLab(t, webRole())
	l.build("web")
	host, _ := hostname()
	dead := deadPID(t)
	if _, err := l.store.Acquire(t.Context(), "locks/role/web", "ghost@"+host+" pid "+dead, time.Hour); err != nil {
		t.Fatal(err)
	}
	rec, err := l.controller().Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
}

// With LockWait, a second command waits for a held lock, saying who holds it, and goes on once the
// holder releases it; a wait that runs out is refused naming the holder and how long it waited.
func TestLockWaitsForTheHolder(t *testing.T) {
	l := newLab(t, webRole())
	l.build("web")
	held, err := l.store.Acquire(t.Context(), "locks/role/web", "ci run 7: runner@elsewhere pid 9", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	short := l.controller(func(o *rollout.Options) { o.LockWait = 300 * ms })
	start := time.Now()
	_, err = short.Start(t.Context(), "web", rollout.StartOptions{})
	var locked *rollout.LockedError
	if !errors.As(err, &locked) || locked.Waited < 300*ms || time.Since(start) < 300*ms ||
		!strings.Contains(err.Error(), "still locked by ci run 7: runner@elsewhere pid 9 after waiting ") {
		t.Fatalf("a wait that runs out: %v after %s", err, time.Since(start))
	}
	if !slices.ContainsFunc(l.events, func(e rollout.Event) bool {
		return e.Step == "lock" && strings.HasPrefix(e.Message, "waiting for the lock of role web, held by ci run 7: runner@elsewhere pid 9 for ")
	}) {
		t.Errorf("no lock step named the holder while waiting: %v", l.events)
	}

	go func() {
		time.Sleep(400 * ms)
		_ = l.store.Release(context.Background(), held)
	}()
	waiter := l.controller(func(o *rollout.Options) { o.LockWait = 10 * time.Second })
	start = time.Now()
	rec, err := waiter.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if time.Since(start) < 400*ms {
		t.Errorf("started after %s, before the holder released the lock", time.Since(start))
	}
}
