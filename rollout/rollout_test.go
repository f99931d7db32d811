package rollout_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout"
	"github.com/drover-dev/drover/rollout/health"
)

func mustRecord(t *testing.T, rec *rollout.Record, err error, want rollout.State) *rollout.Record {
	t.Helper()
	if err != nil {
		t.Fatalf("err = %v, want a rollout in %s", err, want)
	}
	if rec == nil || rec.State != want {
		t.Fatalf("rollout = %+v, want state %s", rec, want)
	}
	return rec
}

// deployed returns a lab where image 1 of web is live (first deploy, promoted and retired).
func deployed(t *testing.T, mod ...func(*fleet.Deploy)) (*lab, string) {
	t.Helper()
	l := newLab(t, webRole(mod...))
	img1 := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	l.resetEvents()
	return l, img1
}

func TestFirstDeploy(t *testing.T) {
	l := newLab(t, webRole())
	img := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if got := l.running("web")[img]; len(got) != 2 {
		t.Fatalf("running instances of the image: %d, want 2", len(got))
	}
	if h, _, _ := l.holder(); h != "" {
		t.Fatalf("failover IP held by %s before promote", h)
	}
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	_, himg, slot := l.holder()
	if himg != img || slot != "0" {
		t.Fatalf("failover IP on image %q slot %q, want the first green", himg, slot)
	}
	if rec.Previous != "" || len(rec.Blue) != 0 || rec.PreviousImage != nil {
		t.Errorf("first deploy has a blue: %+v", rec)
	}
	if !strings.Contains(rec.Cutover.Note, "points at one instance") {
		t.Errorf("cutover note %q does not say the IP points at one green", rec.Cutover.Note)
	}
	want := []rollout.State{rollout.Planned, rollout.Booting, rollout.Checking, rollout.Ready, rollout.CuttingOver, rollout.Draining, rollout.Promoted, rollout.Retired}
	if got := l.transitions(); !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
	for _, s := range want {
		if rec.At(s).IsZero() {
			t.Errorf("no timestamp for %s", s)
		}
	}
	inUse, err := rollout.ImagesInUse(t.Context(), l.store)
	if err != nil || len(inUse) != 1 || inUse[img].Role != "web" {
		t.Errorf("in-use marks %v, %v; want the live image", inUse, err)
	}
	if _, err := l.lease("web"); err == nil {
		t.Error("lock still held after the command")
	}
	// Start again: nothing to do.
	if _, err := c.Start(t.Context(), "web", rollout.StartOptions{}); !errors.Is(err, rollout.ErrUpToDate) {
		t.Errorf("second start: %v, want ErrUpToDate", err)
	}
}

func TestSecondRolloutPromoteKeepOld(t *testing.T) {
	l, img1 := deployed(t)
	img2 := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if _, himg, _ := l.holder(); himg != img1 {
		t.Fatalf("before promote the IP is on %q, want blue", himg)
	}
	if rec.PreviousImage == nil || rec.PreviousImage.Identity != img1 || len(rec.Blue) != 2 {
		t.Fatalf("record does not name blue: %+v", rec)
	}
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)
	l.logEvents(t)
	if _, himg, slot := l.holder(); himg != img2 || slot != "0" {
		t.Fatalf("after promote the IP is on %q slot %s, want green slot 0", himg, slot)
	}
	if len(rec.Cutover.Before) != 1 || len(rec.Cutover.After) != 1 || rec.Cutover.Before[0] == rec.Cutover.After[0] {
		t.Errorf("cutover record %+v", rec.Cutover)
	}
	run := l.running("web")
	if len(run[img1]) != 2 || len(run[img2]) != 2 {
		t.Fatalf("after promote: blue %d, green %d instances; want 2 and 2 (blue kept)", len(run[img1]), len(run[img2]))
	}
	// Within keep_old, Tick keeps blue.
	l.clock.Advance(14 * time.Minute)
	rec, err = c.Tick(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)
	if len(l.running("web")[img1]) != 2 {
		t.Fatal("blue destroyed before keep_old passed")
	}
	inUse, _ := rollout.ImagesInUse(t.Context(), l.store)
	if len(inUse) != 2 {
		t.Fatalf("in-use marks %v, want both images", inUse)
	}
	// After keep_old, the next command destroys blue.
	l.clock.Advance(2 * time.Minute)
	st, err := c.Status(t.Context(), "web")
	if err != nil || !st.BlueDue {
		t.Fatalf("status %+v, %v: want blue due", st, err)
	}
	rec, err = c.Tick(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	run = l.running("web")
	if len(run[img1]) != 0 || len(run[img2]) != 2 {
		t.Fatalf("after keep_old: blue %d, green %d; want 0 and 2", len(run[img1]), len(run[img2]))
	}
	inUse, _ = rollout.ImagesInUse(t.Context(), l.store)
	if _, ok := inUse[img1]; ok || len(inUse) != 1 {
		t.Fatalf("in-use marks %v, want only the green image", inUse)
	}
	hist, err := c.History(t.Context(), "web")
	if err != nil || len(hist) != 2 || hist[0].ID != rec.ID {
		t.Fatalf("history %v, %v", hist, err)
	}
}

func TestRollbackInsideKeepOldIsInstant(t *testing.T) {
	l, img1 := deployed(t)
	img2 := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)
	l.clock.Advance(5 * time.Minute)
	// Blue answers 503 now: a rollback that ran health gates would fail or wait; it must not.
	l.setHealthy(img1, false)
	start := time.Now()
	rec, err = c.Rollback(t.Context(), "web")
	took := time.Since(start)
	mustRecord(t, rec, err, rollout.RolledBack)
	t.Logf("rollback inside keep_old took %s", took)
	if took > 2*time.Second {
		t.Errorf("rollback took %s, want well under 2s", took)
	}
	if _, himg, slot := l.holder(); himg != img1 || slot != "0" {
		t.Fatalf("after rollback the IP is on %q slot %s, want blue slot 0", himg, slot)
	}
	run := l.running("web")
	if len(run[img2]) != 0 || len(run[img1]) != 2 {
		t.Fatalf("after rollback: green %d, blue %d; want 0 and 2", len(run[img2]), len(run[img1]))
	}
	inUse, _ := rollout.ImagesInUse(t.Context(), l.store)
	if _, ok := inUse[img2]; ok {
		t.Error("the rolled-back image is still marked in use")
	}
	// Again: nothing more to undo.
	again, err := c.Rollback(t.Context(), "web")
	if err != nil || again.ID != rec.ID {
		t.Fatalf("second rollback: %v, %v; want a no-op", again, err)
	}
}

func TestRollbackAfterKeepOldRedeploysPrevious(t *testing.T) {
	l, img1 := deployed(t)
	img2 := l.build("web")
	c := l.controller()
	_, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Promote(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(16 * time.Minute)
	rec, err := c.Rollback(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Promoted)
	if rec.Kind != rollout.KindRollback || rec.Image.Identity != img1 || rec.PreviousImage.Identity != img2 {
		t.Fatalf("rollback rollout %+v; want kind rollback of image 1", rec)
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Fatalf("IP on %q, want the redeployed image 1", himg)
	}
}

func TestAbortDestroysGreenKeepsBlue(t *testing.T) {
	l, img1 := deployed(t)
	img2 := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	blueHolder, _, _ := l.holder()
	rec, err = c.Abort(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Aborted)
	run := l.running("web")
	if len(run[img2]) != 0 || len(run[img1]) != 2 {
		t.Fatalf("after abort: green %d, blue %d; want 0 and 2", len(run[img2]), len(run[img1]))
	}
	if h, _, _ := l.holder(); h != blueHolder {
		t.Fatalf("IP moved from %s to %s", blueHolder, h)
	}
	if _, err := c.Abort(t.Context(), "web"); err != nil {
		t.Fatalf("abort again: %v, want a no-op", err)
	}
	// After a cutover, abort refuses and points at rollback.
	l.build("web")
	if _, err := c.Start(t.Context(), "web", rollout.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Promote(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Abort(t.Context(), "web"); err == nil || !strings.Contains(err.Error(), "use rollback") {
		t.Fatalf("abort after cutover: %v", err)
	}
}

func TestUnhealthyGreenIsNeverCutOver(t *testing.T) {
	l, img1 := deployed(t)
	img2 := l.build("web")
	l.setHealthy(img2, false)
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{AutoPromote: new(true)})
	var f *health.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want a *health.Failure", err)
	}
	t.Logf("error: %v\n%s", err, f.Report())
	if rec.State != rollout.Failed || rec.Health == nil {
		t.Fatalf("rollout %+v, want failed with the failure recorded", rec)
	}
	if !strings.Contains(f.Check, "http :80 GET /healthz expect 200") || !strings.Contains(f.LastError, "503") {
		t.Errorf("failure names check %q, last error %q", f.Check, f.LastError)
	}
	if !strings.Contains(f.ConsoleTail, "nginx[412]: started") || strings.Contains(f.ConsoleTail, "hvs.") {
		t.Errorf("console tail %q: want the log's tail, redacted", f.ConsoleTail)
	}
	if slices.Contains(l.transitions(), rollout.CuttingOver) {
		t.Error("a failing green was cut over")
	}
	run := l.running("web")
	if len(run[img2]) != 0 || len(run[img1]) != 2 {
		t.Fatalf("green %d, blue %d running; want 0 and 2", len(run[img2]), len(run[img1]))
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Fatal("IP left blue")
	}
}

func TestWatchRollsBackUnhealthyGreen(t *testing.T) {
	l, img1 := deployed(t, func(d *fleet.Deploy) { d.Watch = 300 * ms })
	img2 := l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	l.onEvent = func(e rollout.Event) {
		if e.Kind == "transition" && e.State == rollout.Draining {
			l.setHealthy(img2, false)
		}
	}
	rec, err = c.Promote(t.Context(), "web")
	var f *health.Failure
	if !errors.As(err, &f) || rec.State != rollout.RolledBack {
		t.Fatalf("promote: %v, %v; want rolled back with a failure", rec.State, err)
	}
	if !strings.HasPrefix(f.Target, "failover 127.0.0.100") {
		t.Errorf("watch probed %q, want the failover address", f.Target)
	}
	if _, himg, _ := l.holder(); himg != img1 {
		t.Fatalf("IP on %q after the watch failed, want blue", himg)
	}
	if run := l.running("web"); len(run[img2]) != 0 || len(run[img1]) != 2 {
		t.Fatalf("green %d, blue %d; want 0 and 2", len(run[img2]), len(run[img1]))
	}
}

func TestCutoverNoneOnlyRecords(t *testing.T) {
	l := newLab(t, webRole(func(d *fleet.Deploy) { d.Cutover = fleet.Cutover{Type: "none"}; d.AutoPromote = true }))
	l.build("web")
	c := l.controller()
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Retired)
	if h, _, _ := l.holder(); h != "" {
		t.Fatalf("cutover none moved the IP to %s", h)
	}
	if !strings.Contains(rec.Cutover.Note, "by hand") {
		t.Errorf("note %q", rec.Cutover.Note)
	}
}

func TestStartRefusesWhileAnotherIsInFlight(t *testing.T) {
	l, _ := deployed(t)
	l.build("web")
	c := l.controller()
	if _, err := c.Start(t.Context(), "web", rollout.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	l.build("web")
	if _, err := c.Start(t.Context(), "web", rollout.StartOptions{}); !errors.Is(err, rollout.ErrInProgress) {
		t.Fatalf("start with a ready rollout of another image: %v, want ErrInProgress", err)
	}
}
