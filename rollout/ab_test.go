package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
	computemem "github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/rollout"
	"github.com/drover-dev/drover/rollout/health"
)

// piLab is the lab of the ab strategy: one in-memory A/B device ("pi", at 10.0.9.2) whose web server
// answers 200 unless the image its running slot holds is marked unhealthy.
type piLab struct {
	*lab
	dev *computemem.Device
	srv *httptest.Server

	mu        sync.Mutex
	unhealthy map[string]bool // bundle contents whose web server answers 503
	content   map[string]string
}

const piHost = "pi"

func piRole(mod ...func(*fleet.Deploy)) *fleet.Role {
	dep := &fleet.Deploy{
		Compute: "pi", Strategy: "ab",
		Health: []fleet.HealthCheck{{Type: "http", Port: 80, Path: "/", Expect: 200,
			Interval: 5 * ms, Timeout: 500 * ms, Healthy: 2, Deadline: 400 * ms}},
		Watch: 60 * ms,
	}
	for _, m := range mod {
		m(dep)
	}
	return &fleet.Role{Name: "pi", Image: fleet.Image{Builder: "rpi", Arch: "arm64"}, Deploy: dep}
}

func newPiLab(t *testing.T, mod ...func(*fleet.Deploy)) *piLab {
	t.Helper()
	l := &piLab{lab: newLab(t, piRole(mod...)), unhealthy: map[string]bool{}, content: map[string]string{}}
	l.dev = computemem.NewDevice(map[string]netip.Addr{piHost: netip.MustParseAddr("10.0.9.2")})
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, content, _ := l.dev.Running(piHost)
		l.mu.Lock()
		bad := l.unhealthy[content]
		l.mu.Unlock()
		if bad {
			http.Error(w, "nginx: not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "hello from the Pi")
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *piLab) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(address); err != nil || ap.Addr() != netip.MustParseAddr("10.0.9.2") {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.srv.Listener.Addr().String())
}

func (l *piLab) controller(mod ...func(*rollout.Options)) *rollout.Controller {
	l.t.Helper()
	return l.lab.controller(append([]func(*rollout.Options){func(o *rollout.Options) {
		o.Compute = func(_ context.Context, name string) (compute.Provider, error) {
			if name != "pi" {
				return nil, fmt.Errorf("no compute %q", name)
			}
			return l.dev, nil
		}
		o.Dialer = l
	}}, mod...)...)
}

// buildCard adds a new SD card image of the pi role, with an update bundle, and returns its identity
// and the content a slot written from it holds.
func (l *piLab) buildCard(healthy bool) (identity, content string) {
	l.t.Helper()
	l.built["pi"]++
	n := l.built["pi"]
	identity = fmt.Sprintf("sha256:%064x", 0xab0000+n)
	st, err := l.catalog.Stage(identity)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(st.Dir, "bundle"), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "bundle", computemem.BundleManifest), fmt.Appendf(nil, `{"image": %d}`, n), 0o644); err != nil {
		l.t.Fatal(err)
	}
	if content, err = computemem.BundleContent(filepath.Join(st.Dir, "bundle")); err != nil {
		l.t.Fatal(err)
	}
	m := &images.Manifest{Identity: identity, Role: "pi", Arch: "arm64", Created: time.Date(2026, 11, 1, 0, n, 0, 0, time.UTC),
		Artifacts: []images.Artifact{{Format: images.CardFormat, File: "card.img"}}, Card: &images.Card{Bundle: "bundle"}}
	if err := st.Commit(m); err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.unhealthy[content] = !healthy
	l.content[identity] = content
	l.mu.Unlock()
	return identity, content
}

// expectRunning checks the slot the device runs and commits, and what the running slot holds.
func (l *piLab) expectRunning(step, slot, committed, content string) {
	l.t.Helper()
	got, has, _ := l.dev.Running(piHost)
	st, err := l.dev.SlotStatus(context.Background(), piHost)
	if err != nil {
		l.t.Fatal(err)
	}
	if got != slot || st.Committed != committed || has != content {
		l.t.Fatalf("%s: the device runs slot %s (holding %.8s), committed %s; want slot %s (holding %.8s), committed %s", step, got, has, st.Committed, slot, content, committed)
	}
}

func TestABUpdateCommitAndRollback(t *testing.T) {
	l := newPiLab(t)
	c := l.controller()
	ctx := t.Context()
	img1, c1 := l.buildCard(true)
	r := expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img1}))
	l.expectRunning("after start", "b", "a", c1)
	h := r.Progress.AB.Hosts[0]
	if h.From != "a" || h.To != "b" || h.Step != "up" || h.Sent == 0 {
		t.Errorf("progress after start: %+v", h)
	}
	st, err := c.Status(ctx, "pi")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := st.WriteText(&text, l.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if want := "device    pi: slot a committed before, slot b written by " + r.ID + "; last step up (sent 1.0 MiB of 512.0 MiB)"; !strings.Contains(text.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, text.String())
	}
	r = expectState(t, rollout.Retired)(c.Promote(ctx, "pi"))
	l.expectRunning("after promote", "b", "b", c1)

	// A second image goes to slot a; then a rollback after its commit tries b again and commits it.
	img2, c2 := l.buildCard(true)
	expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img2}))
	l.expectRunning("second start", "a", "b", c2)
	expectState(t, rollout.Retired)(c.Promote(ctx, "pi"))
	l.expectRunning("second promote", "a", "a", c2)
	back, err := c.Rollback(ctx, "pi")
	if err != nil {
		t.Fatal(err)
	}
	if back.Kind != rollout.KindRollback || back.State != rollout.Retired || back.Image.Identity != img1 {
		t.Fatalf("rollback after the commit: %s %s of %s", back.Kind, back.State, back.Image.Short)
	}
	l.expectRunning("after rollback", "b", "b", c1)
	if bh := back.Progress.AB.Hosts[0]; bh.Sent != 0 {
		t.Errorf("the rollback wrote %d bytes into a slot that still held the previous image", bh.Sent)
	}
	_ = r
}

func TestABUnhealthyTrialGoesBackByItself(t *testing.T) {
	l := newPiLab(t)
	c := l.controller()
	ctx := t.Context()
	img1, c1 := l.buildCard(true)
	expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img1}))
	expectState(t, rollout.Retired)(c.Promote(ctx, "pi"))

	bad, _ := l.buildCard(false)
	r, err := c.Start(ctx, "pi", rollout.StartOptions{Image: bad})
	var f *health.Failure
	if !errors.As(err, &f) || r.State != rollout.RolledBack {
		t.Fatalf("start of an image whose service fails: %v, state %s; want rolled back with the health failure", err, r.State)
	}
	l.expectRunning("after the failed trial", "b", "b", c1)
}

func TestABHangFallsBackByWatchdog(t *testing.T) {
	l := newPiLab(t)
	c := l.controller()
	ctx := t.Context()
	hang, content := l.buildCard(true)
	l.dev.Hang(content)
	r, err := c.Start(ctx, "pi", rollout.StartOptions{Image: hang})
	if err == nil || r.State != rollout.RolledBack {
		t.Fatalf("start of an image that hangs: %v, state %s; want rolled back", err, r.State)
	}
	l.expectRunning("after the hang", "a", "a", "factory")
	if _, _, boots := l.dev.Running(piHost); boots != 2 {
		t.Errorf("%d boots; want the hung trial and the watchdog's reset into slot a", boots)
	}
}

func TestABAbortBeforeCommitRebootsIntoCommitted(t *testing.T) {
	l := newPiLab(t)
	c := l.controller()
	ctx := t.Context()
	img, _ := l.buildCard(true)
	expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img}))
	expectState(t, rollout.Aborted)(c.Abort(ctx, "pi"))
	l.expectRunning("after abort", "a", "a", "factory")
}

func TestABWriteFailureIsResumed(t *testing.T) {
	l := newPiLab(t)
	c := l.controller()
	ctx := t.Context()
	img, content := l.buildCard(true)
	l.dev.FailWrites(1)
	l.dev.DownPolls(3)
	if r, err := c.Start(ctx, "pi", rollout.StartOptions{Image: img}); err == nil || r.State != rollout.Booting {
		t.Fatalf("start whose write failed part way: %v, state %s; want an error and the rollout left booting", err, r.State)
	}
	l.expectRunning("after the failed write", "a", "a", "factory")
	if got := l.dev.Content(piHost, "b"); got != "partial" {
		t.Fatalf("slot b holds %q after the failed write", got)
	}
	expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img}))
	expectState(t, rollout.Retired)(c.Promote(ctx, "pi"))
	l.expectRunning("after the rerun", "b", "b", content)
}

// TestABCrashAfterEveryStep stops the command right after each step is written (as kill -9 would)
// and runs it again: every run converges on the new slot committed, and an abort or rollback from
// any point leaves the device on a committed slot.
func TestABCrashAfterEveryStep(t *testing.T) {
	for _, point := range append([]rollout.State{rollout.Planned, rollout.Booting, rollout.Checking, rollout.Ready, rollout.CuttingOver, rollout.Draining},
		"ab-write", "ab-trial", "ab-reboot", "ab-up", "ab-commit", "ab-committed") {
		t.Run(string(point), func(t *testing.T) {
			l := newPiLab(t)
			l.dev.DownPolls(2)
			ctx := t.Context()
			img, content := l.buildCard(true)
			crashing := l.controller(func(o *rollout.Options) { o.CrashAfter = point })
			_, err := crashing.Start(ctx, "pi", rollout.StartOptions{Image: img, AutoPromote: new(true)})
			if !errors.Is(err, rollout.ErrCrashed) {
				t.Fatalf("start with the crash hook at %s: %v", point, err)
			}
			c := l.controller()
			r := expectState(t, rollout.Retired)(c.Start(ctx, "pi", rollout.StartOptions{Image: img, AutoPromote: new(true)}))
			l.expectRunning("after the rerun", "b", "b", content)
			if _, _, boots := l.dev.Running(piHost); boots > 2 {
				t.Errorf("%d boots for one update (a reboot asked again may cost one more)", boots)
			}
			_ = r
		})
	}
}

// TestABCrashDuringGoingBack kills the rollback after a commit at each of its steps: the rerun ends
// with the previous slot committed.
func TestABCrashDuringGoingBack(t *testing.T) {
	for _, point := range []rollout.State{"ab-back-trial", "ab-back-reboot", "ab-back-commit", "ab-back"} {
		t.Run(string(point), func(t *testing.T) {
			l := newPiLab(t, func(d *fleet.Deploy) { d.Watch = time.Hour })
			ctx := t.Context()
			img, _ := l.buildCard(true)
			c := l.controller()
			expectState(t, rollout.Ready)(c.Start(ctx, "pi", rollout.StartOptions{Image: img}))
			// Promote is cut short in its long watch: the slot is committed, the rollout draining.
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, _ = c.Promote(pctx, "pi")
			cancel()
			l.expectRunning("draining", "b", "b", l.content[img])
			crashing := l.controller(func(o *rollout.Options) { o.CrashAfter = point })
			if _, err := crashing.Rollback(ctx, "pi"); !errors.Is(err, rollout.ErrCrashed) {
				t.Fatalf("rollback with the crash hook at %s: %v", point, err)
			}
			expectState(t, rollout.RolledBack)(c.Rollback(ctx, "pi"))
			l.expectRunning("after the rollback", "a", "a", "factory")
		})
	}
}

func TestABRefusesADeviceOnATrialOfSomethingElse(t *testing.T) {
	l := newPiLab(t)
	ctx := t.Context()
	img, _ := l.buildCard(true)
	if _, err := l.dev.WriteSlot(ctx, piHost, "b", filepath.Join(l.catalog.ImageDir(img), "bundle")); err != nil {
		t.Fatal(err)
	}
	if err := l.dev.ArmTrial(ctx, piHost, "b"); err != nil {
		t.Fatal(err)
	}
	if err := l.dev.Reboot(ctx, piHost); err != nil {
		t.Fatal(err)
	}
	_, err := l.controller().Start(ctx, "pi", rollout.StartOptions{Image: img})
	if err == nil || !strings.Contains(err.Error(), "runs slot b on trial") {
		t.Fatalf("start on a device running a trial: %v", err)
	}
}

// expectState checks a command's record and error: no error, and the rollout in state want.
func expectState(t *testing.T, want rollout.State) func(*rollout.Record, error) *rollout.Record {
	return func(r *rollout.Record, err error) *rollout.Record {
		t.Helper()
		return mustRecord(t, r, err, want)
	}
}

// TestABRollbackAfterPromoteKilledAfterTheCommit is TestE2EPiAB's rollback: promote is killed right
// after the commit is recorded (the rollout still cutting over); rollback goes back to the previous
// slot, committed.
func TestABRollbackAfterPromoteKilledAfterTheCommit(t *testing.T) {
	l := newPiLab(t)
	ctx := t.Context()
	img, content := l.buildCard(true)
	expectState(t, rollout.Ready)(l.controller().Start(ctx, "pi", rollout.StartOptions{Image: img}))
	crashing := l.controller(func(o *rollout.Options) { o.CrashAfter = "ab-committed" })
	if _, err := crashing.Promote(ctx, "pi"); !errors.Is(err, rollout.ErrCrashed) {
		t.Fatalf("promote with the crash hook after the commit: %v", err)
	}
	l.expectRunning("after the commit", "b", "b", content)
	r := expectState(t, rollout.RolledBack)(l.controller().Rollback(ctx, "pi"))
	l.expectRunning("after the rollback", "a", "a", "factory")
	if h := r.Progress.AB.Hosts[0]; h.Step != "back" {
		t.Errorf("the device's last step %q, want back", h.Step)
	}
}
