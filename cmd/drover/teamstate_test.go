package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/etcd"
	"github.com/drover-dev/drover/plugins/store/etcd/etcdtest"
)

// teamFleet is a fleet whose state is on etcd: web deploys on a cloud that boots published copies
// (memcloud), db on a compute that boots the catalog's disk (memdisk, as the lab does).
const teamFleet = `
store "etcd" {
  endpoints = [%q]
  prefix    = %q
}

compute "memcloud" "cloud" {
  region = "mem-1"
}

compute "memdisk" "disk" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "cloud"
    count    = 1
    keep_old = "0s"
    watch    = "0s"
  }
}

role "db" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "disk"
    count    = 1
    keep_old = "0s"
    watch    = "0s"
  }
}
`

// teamMachine is one machine of a team: its own directory (fleet file and state dir), the shared
// etcd and cloud.
type teamMachine struct {
	t      *testing.T
	dir    string
	fleet  string
	state  string
	extra  all.Providers
	env    map[string]string
	prefix string
	url    string
}

// teamProviders registers the shared cloud as "memcloud" and a compute that boots the catalog's
// disk as "memdisk".
func teamProviders(cloud *memory.Cloud) all.Providers {
	p := memcloudFactory(cloud)
	disk := memory.New()
	p.Compute = append(p.Compute, compute.Factory{
		Type:      "memdisk",
		Summary:   "a test-only compute in memory that boots the catalog's disk",
		NewConfig: func(config.LookupEnv) (any, error) { return &struct{}{}, nil },
		Open:      func(context.Context, any, config.Env) (compute.Provider, error) { return disk, nil },
	})
	return p
}

func newTeamMachine(t *testing.T, url, prefix, owner string, extra all.Providers) *teamMachine {
	t.Helper()
	dir := t.TempDir()
	m := &teamMachine{t: t, dir: dir, fleet: filepath.Join(dir, "drover.hcl"), state: filepath.Join(dir, "state"),
		extra: extra, env: map[string]string{"DROVER_OWNER": owner}, prefix: prefix, url: url}
	if err := os.WriteFile(m.fleet, fmt.Appendf(nil, teamFleet, url, prefix), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *teamMachine) drover(args ...string) (int, string, string) {
	m.t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr, func(k string) (string, bool) { v, ok := m.env[k]; return v, ok })
	a.extraProviders = m.extra
	code := runApp(a, append([]string{"drover", "--fleet", m.fleet, "--state", m.state}, args...))
	return code, stdout.String(), stderr.String()
}

// store opens the team's etcd store as another program would.
func (m *teamMachine) store() store.Store {
	m.t.Helper()
	s, err := etcd.New(etcd.Config{Endpoints: []string{m.url}, Prefix: m.prefix})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { s.Close() })
	return s
}

// Two machines share only one etcd (and the cloud): what A built and published, B lists, shows,
// plans and rolls out from the cloud's copy without the disk; a role whose compute boots the
// catalog's disk is refused on B with what to do.
func TestTeamStateSharedCatalog(t *testing.T) {
	url := etcdtest.Start(t)
	cloud := memory.NewCloud("mem-1")
	extra := teamProviders(cloud)
	a := newTeamMachine(t, url, "team/", "laptop a", extra)
	b := newTeamMachine(t, url, "team/", "runner b", extra)

	web := seedRawImage(t, a.state, 100<<10, 0)
	db := seedRawImage(t, a.state, 50<<10, time.Hour)
	relabel(t, a.state, db, "db")
	if code, stdout, stderr := a.drover("images", "publish", "--to", "cloud", "web@"+web.ShortID()); code != exitOK {
		t.Fatalf("A: images publish: exit %d\n%s%s", code, stdout, stderr)
	}
	// What A's publish recorded in the store, through the catalog's code path.
	st := a.store()
	for _, key := range []string{"catalog/manifests/" + strings.TrimPrefix(web.Identity, "sha256:"), "catalog/published/" + strings.TrimPrefix(web.Identity, "sha256:")} {
		if _, err := st.Get(t.Context(), key); err != nil {
			t.Errorf("the store has no %s: %v", key, err)
		}
	}
	if code, stdout, stderr := a.drover("images", "list"); code != exitOK || strings.Contains(stdout, "*") {
		t.Fatalf("A: images list: exit %d (A built both: nothing is elsewhere)\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := b.drover("images", "list")
	if code != exitOK || !strings.Contains(stdout, web.ShortID()+"*") || !strings.Contains(stdout, "cloud/mem-1") ||
		!strings.Contains(stdout, "* built on another machine (the state store records it): its disk is not here\n") {
		t.Fatalf("B: images list: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = b.drover("--output", "json", "images", "list")
	if code != exitOK || !strings.Contains(stdout, `"disk_here": false`) {
		t.Errorf("B: images list --output json: exit %d\n%s", code, stdout)
	}
	code, stdout, stderr = b.drover("images", "show", "web")
	if code != exitOK || !strings.Contains(stdout, "directory  (not on this machine: built elsewhere, recorded in the state store)\n") ||
		!strings.Contains(stdout, "published  cloud (memcloud) img-"+web.ShortID()+" in mem-1") {
		t.Errorf("B: images show: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = b.drover("plan", "--image", "web@"+web.ShortID(), "web")
	if code != exitOK || !strings.Contains(stdout, web.ShortID()) {
		t.Errorf("B: plan: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = b.drover("rollout", "start", "--image", "web@"+web.ShortID(), "web")
	if code != exitOK || !strings.Contains(stdout, ": publish: image "+web.ShortID()+" is published on cloud as img-"+web.ShortID()) {
		t.Fatalf("B: rollout start of the image A built and published: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, publishes := cloud.Uploaded(); publishes != 1 {
		t.Errorf("%d publishes, want A's only: B uploads nothing", publishes)
	}
	code, stdout, stderr = a.drover("rollout", "status", "web")
	if code != exitOK || !strings.Contains(stdout, "ready         image "+web.ShortID()) {
		t.Errorf("A: rollout status shows B's rollout: exit %d\n%s%s", code, stdout, stderr)
	}

	// db, never published (its compute boots the disk), recorded in the store by A's catalog as a
	// build's commit or cache hit records it.
	cat := images.OpenCatalog(a.state).Share(t.Context(), st)
	if err := cat.ShareManifest(dbManifest(t, a.state, db)); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = b.drover("rollout", "start", "--image", "db@"+db.ShortID(), "db")
	if code == exitOK || !strings.Contains(stderr+stdout, "was built on another machine and compute \"disk\" boots the disk from this machine's catalog") {
		t.Errorf("B: rollout start of db, whose disk is on A: exit %d\n%s%s", code, stdout, stderr)
	}
}

// relabel makes a seeded image belong to role.
func relabel(t *testing.T, state string, m *images.Manifest, role string) {
	t.Helper()
	path := filepath.Join(images.OpenCatalog(state).ImageDir(m.Identity), "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`"role": "web"`), []byte(`"role": "`+role+`"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Role = role
}

func dbManifest(t *testing.T, state string, m *images.Manifest) *images.Manifest {
	t.Helper()
	got, err := images.OpenCatalog(state).Get(m.Identity)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A role's lock on etcd: held by a runner on another machine, a second command is refused naming
// it; with --wait it waits, saying who it waits for, and goes on once released; a runner killed
// while holding it leaves a lease that expires after its TTL, and a waiting command then proceeds.
func TestTeamStateLockWaitRefuseAndExpire(t *testing.T) {
	url := etcdtest.Start(t)
	cloud := memory.NewCloud("mem-1")
	b := newTeamMachine(t, url, "team/", "runner b", teamProviders(cloud))
	web := seedRawImage(t, b.state, 50<<10, 0)
	st := b.store()

	held, err := st.Acquire(t.Context(), "locks/role/web", "ci run 1: runner@other-host pid 77", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := b.drover("rollout", "start", "--image", web.Identity, "web")
	if code == exitOK || !strings.Contains(stderr, `role "web" is locked by ci run 1: runner@other-host pid 77, held for `) ||
		!strings.Contains(stderr, "--wait DURATION waits for the lock") {
		t.Fatalf("rollout start while another runner holds the lock: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = b.drover("rollout", "start", "--wait", "1s", "--image", web.Identity, "web")
	if code == exitOK || !strings.Contains(stderr, "still locked by ci run 1: runner@other-host pid 77 after waiting 1s") ||
		!strings.Contains(stdout, ": lock: waiting for the lock of role web, held by ci run 1: runner@other-host pid 77 for ") {
		t.Fatalf("rollout start --wait 1s: exit %d\n%s%s", code, stdout, stderr)
	}
	go func() {
		time.Sleep(time.Second)
		_ = st.Release(context.Background(), held)
	}()
	start := time.Now()
	code, stdout, stderr = b.drover("rollout", "start", "--wait", "30s", "--image", web.Identity, "web")
	if code != exitOK || time.Since(start) < time.Second || !strings.Contains(stdout, "lock: waiting for the lock of role web, held by ci run 1") ||
		!strings.Contains(stdout, "lock: locked role web as runner b: ") {
		t.Fatalf("rollout start --wait 30s, released after 1s: exit %d after %s\n%s%s", code, time.Since(start), stdout, stderr)
	}
	if code, stdout, stderr := b.drover("rollout", "abort", "web"); code != exitOK {
		t.Fatalf("rollout abort: exit %d\n%s%s", code, stdout, stderr)
	}

	// A runner on another machine takes the lock and renews it every ttl/3, then is killed (-9).
	const ttl = 2 * time.Second
	holder := exec.Command(os.Args[0], "-test.run=^TestTeamStateLockHolderProcess$")
	holder.Env = append(os.Environ(), "DROVER_TEAMSTATE_HOLDER=1", "HOLDER_ENDPOINT="+url, "HOLDER_TTL="+ttl.String())
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "held ") {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	// Alive, it keeps the lock beyond its TTL.
	time.Sleep(2 * ttl)
	if code, _, stderr := b.drover("rollout", "start", "--image", web.Identity, "web"); code == exitOK || !strings.Contains(stderr, "locked by ci run 2: runner@far-away pid 88") {
		t.Fatalf("rollout start while the renewing holder lives: exit %d\n%s", code, stderr)
	}
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	code, stdout, stderr = b.drover("rollout", "start", "--wait", "30s", "--image", web.Identity, "web")
	after := time.Since(killed)
	if code != exitOK || !strings.Contains(stdout, "waiting for the lock of role web, held by ci run 2: runner@far-away pid 88") || after > ttl+10*time.Second {
		t.Fatalf("rollout start --wait after the holder was killed: exit %d after %s\n%s%s", code, after, stdout, stderr)
	}
	t.Logf("the killed holder's lock (ttl %s) was taken %s after the kill", ttl, after.Round(time.Millisecond))
}

// TestTeamStateLockHolderProcess is the runner TestTeamStateLockWaitRefuseAndExpire kills: run
// again as a child, it takes web's lock on the etcd at HOLDER_ENDPOINT as a runner on another
// machine, prints "held TOKEN" and renews it every ttl/3, as a rollout does, until killed.
func TestTeamStateLockHolderProcess(t *testing.T) {
	if os.Getenv("DROVER_TEAMSTATE_HOLDER") != "1" {
		t.Skip("the lock holder of TestTeamStateLockWaitRefuseAndExpire, run as its child")
	}
	ttl, err := time.ParseDuration(os.Getenv("HOLDER_TTL"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	s, err := etcd.New(etcd.Config{Endpoints: []string{os.Getenv("HOLDER_ENDPOINT")}, Prefix: "team/"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	l, err := s.Acquire(ctx, "locks/role/web", "ci run 2: runner@far-away pid 88", ttl)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("held", l.Token)
	for {
		time.Sleep(ttl / 3)
		if l, err = s.Renew(ctx, l, ttl); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	}
}
