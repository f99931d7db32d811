package tree

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuildArgs(t *testing.T) {
	n, err := BaseSpec{Arch: "arm64", Snapshot: "20261101T000000Z", Packages: []string{"udev", "linux-image-arm64"},
		Components: []string{"main", "non-free-firmware"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	b := build{spec: n, root: "/c/trees/k.tmp-1/root", debs: "/c/debs/bookworm-arm64", debsOut: "/c/trees/k.tmp-1/debs"}
	args, err := b.args()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--mode=root", "--variant=apt", "--architectures=arm64",
		"--components=main,non-free-firmware", "--include=linux-image-arm64,udev",
		"--setup-hook=sync-in /c/debs/bookworm-arm64 /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives /c/trees/k.tmp-1/debs",
		"--skip=essential/unlink,download/empty", `--aptopt=Acquire::Check-Valid-Until "false"`} {
		if !slices.Contains(args, want) {
			t.Errorf("args lack %q: %q", want, args)
		}
	}
	tail := args[len(args)-5:]
	wantTail := []string{"bookworm", b.root,
		"deb http://snapshot.debian.org/archive/debian/20261101T000000Z/ bookworm main non-free-firmware",
		"deb http://snapshot.debian.org/archive/debian/20261101T000000Z/ bookworm-updates main non-free-firmware",
		"deb http://snapshot.debian.org/archive/debian-security/20261101T000000Z/ bookworm-security main non-free-firmware"}
	if !slices.Equal(tail, wantTail) {
		t.Errorf("suite, target, sources = %q, want %q", tail, wantTail)
	}
	if sim := b.simulateArgs(); !slices.Equal(sim[len(sim)-3:], wantTail[2:]) {
		t.Errorf("simulated build's sources = %q, want %q", sim[len(sim)-3:], wantTail[2:])
	}
	env, _ := b.env()
	if !slices.Contains(env, "SOURCE_DATE_EPOCH=1793491200") {
		t.Error("snapshot time is not SOURCE_DATE_EPOCH")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1234")
	live := build{spec: BaseSpec{Arch: "amd64"}.normalized()}
	if env, _ := live.env(); !slices.Contains(env, "SOURCE_DATE_EPOCH=1767225600") || slices.Contains(env, "SOURCE_DATE_EPOCH=1234") {
		t.Error("a live archive's tree is not made with the fixed SOURCE_DATE_EPOCH 2026-01-01 (or the host's leaks in)")
	}
	b.debs = "/c/with space/debs"
	if _, err := b.args(); err == nil {
		t.Error("a cache path with a space was accepted")
	}
}

func TestUnknownPackages(t *testing.T) {
	got := unknownPackages([]string{"Building dependency tree...", "E: Unable to locate package nosuchpkg", "E: Unable to locate package other"})
	if strings.Join(got, ",") != "nosuchpkg,other" {
		t.Fatalf("got %q", got)
	}
}

func TestCheckMirror(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debian/dists/bookworm/InRelease" {
			w.Write([]byte("signed"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := checkMirror(ctx, srv.URL+"/debian", "bookworm"); err != nil {
		t.Errorf("good mirror: %v", err)
	}
	if err := checkMirror(ctx, srv.URL+"/debian", "trixie"); err == nil || !strings.Contains(err.Error(), `has no suite "trixie"`) {
		t.Errorf("missing suite: %v", err)
	}
	if err := checkMirror(ctx, "http://127.0.0.1:9/debian", "bookworm"); err == nil || !strings.Contains(err.Error(), "mirror http://127.0.0.1:9/debian is unreachable") {
		t.Errorf("unreachable: %v", err)
	}
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "dists/bookworm/Release"), "x")
	if err := checkMirror(ctx, "file://"+dir, "bookworm"); err != nil {
		t.Errorf("file mirror: %v", err)
	}
	if err := checkMirror(ctx, "file://"+dir, "trixie"); err == nil {
		t.Error("file mirror without the suite passed")
	}
}

// TestCheckSources: a mirror without the updates suites fails before mmdebstrap runs, naming the
// missing suite and the two ways out; with updates off the same mirror passes.
func TestCheckSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "dists/bookworm/Release"), "x")
	spec := BaseSpec{Arch: "amd64", Mirror: "file://" + dir, SecurityMirror: "file://" + dir + "-security"}
	err := checkSources(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), `has no suite "bookworm-updates"`) || !strings.Contains(err.Error(), "updates = false with updates_off_reason") {
		t.Errorf("mirror without bookworm-updates: %v", err)
	}
	writeTestFile(t, filepath.Join(dir, "dists/bookworm-updates/Release"), "x")
	if err := checkSources(ctx, spec); err == nil || !strings.Contains(err.Error(), `has no suite "bookworm-security"`) {
		t.Errorf("security archive without bookworm-security: %v", err)
	}
	writeTestFile(t, filepath.Join(dir+"-security", "dists/bookworm-security/InRelease"), "x")
	if err := checkSources(ctx, spec); err != nil {
		t.Errorf("all three suites: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "dists/bookworm-updates"))
	spec.NoUpdates = true
	if err := checkSources(ctx, spec); err != nil {
		t.Errorf("updates off: %v", err)
	}
}

func TestCacheBaseRejectsBadSpec(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	_, _, err := c.Base(context.Background(), BaseSpec{Packages: []string{"Bad Name"}}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `tree: bootstrap: invalid package name "Bad Name"`) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 0 {
		t.Errorf("cache dir touched: %v", entries)
	}
}

func TestParseBinfmtEntry(t *testing.T) {
	on, flags := parseBinfmtEntry("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n")
	if !on || flags != "POCF" {
		t.Fatalf("got %v %q", on, flags)
	}
	if on, _ := parseBinfmtEntry("disabled\nflags: F\n"); on {
		t.Fatal("disabled entry read as enabled")
	}
}

func TestLockKeyWaitsAndCancels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.lock")
	unlock, err := lockKey(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if _, err := lockKey(ctx, p, &log); err == nil || !strings.Contains(err.Error(), "waiting for lock") {
		t.Fatalf("second lock: %v", err)
	}
	if !strings.Contains(log.String(), "waiting for another build") {
		t.Errorf("log %q", log.String())
	}
	done := make(chan error)
	go func() {
		u, err := lockKey(context.Background(), p, nil)
		if err == nil {
			u()
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the lock after release")
	}
}
