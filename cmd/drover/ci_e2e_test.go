//go:build e2e && lab

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/store/etcd/etcdtest"
	"github.com/drover-dev/drover/rollout"
)

// TestE2ECITeam runs drover ci as two CI runners would: two clones of the fleet's git repository,
// each with an empty state directory of its own, sharing only one etcd (store "etcd") and the lab
// (qemu's dir), with real images built and real VMs. The first commit deploys web and dns from
// clone A; a commit to web's page rolls out web only; a commit to dns's zone, run from clone B
// (which never built web), rolls out dns only and knows web's image from the store; a commit that
// changes nothing is a no-op; two runs of one role at once: the second is refused naming the first,
// and with --wait it waits and then finds the role up to date; a runner killed while it holds a
// role's lock: its etcd lease runs out and the next run, waiting, finishes its rollout.
func TestE2ECITeam(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), on addresses of its own (its lab's 127.0.33.0/24, 127.0.0.131-132).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e needs root (it builds images)")
	}
	etcdURL := etcdtest.Start(t)
	root := t.TempDir()
	origin, labDir := filepath.Join(root, "origin.git"), filepath.Join(root, "lab")
	work := filepath.Join(root, "seed")
	copyDir(t, "../../examples/homelab", work)
	fleetFile := filepath.Join(work, "drover.hcl")
	editFleet(t, fleetFile, `store "local" {}`, `store "etcd" {
  endpoints = ["`+etcdURL+`"]
  prefix    = "/drover-e2e-ci/"
}`)
	editFleet(t, fleetFile, `  accel  = "auto"
}`, `  accel   = "auto"
  dir     = "`+labDir+`"
  network = "127.0.33.0/24"
}`)
	editFleet(t, fleetFile, `ip "loopback" "front" {
  address = "127.0.0.100"
}`, `ip "loopback" "front" {
  address = "127.0.0.131"
}

ip "loopback" "ns" {
  address = "127.0.0.132"
}`)
	// web: one instance, promoted at once, blue retired at once (each run is one commit).
	editFleet(t, fleetFile, `    compute = "lab"
    count   = 2`, `    compute      = "lab"
    count        = 1
    auto_promote = true`)
	editFleet(t, fleetFile, `cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }
    keep_old = "15m"
    watch    = var.watch`, `cutover "ip" {
      ip = "front"
    }
    keep_old = "0s"
    watch    = "2s"`)
	editFleet(t, fleetFile, `    cutover "ip" {
      ip = "front"
    }
  }
}

role "vault"`, `    cutover "ip" {
      ip = "ns"
    }
    auto_promote = true
    keep_old     = "0s"
  }
}

role "vault"`)
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.invalid", "GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
		}
		return string(out)
	}
	git(root, "init", "-q", "--bare", "-b", "main", origin)
	git(work, "init", "-q", "-b", "main")
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "the fleet")
	git(work, "push", "-q", origin, "main")
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	git(root, "clone", "-q", origin, a)
	git(root, "clone", "-q", origin, b)
	lab, err := qemu.New(qemu.NewDefaultConfig(os.LookupEnv), labDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })

	type ciResult struct {
		ExitCode int `json:"exit_code"`
		Roles    []struct {
			Role, Image, Result string
		} `json:"roles"`
	}
	ci := func(t *testing.T, clone, owner string, args ...string) (ciResult, result) {
		t.Helper()
		r := droverExec(t, []string{"DROVER_OWNER=" + owner}, append([]string{"--fleet", filepath.Join(clone, "drover.hcl"), "--output", "json", "ci"}, args...)...)
		var res ciResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("drover ci: stdout is not its JSON result: %v\n%s", err, r.stdout)
		}
		return res, r
	}
	results := func(res ciResult) map[string]string {
		m := map[string]string{}
		for _, r := range res.Roles {
			m[r.Role] = r.Result
		}
		return m
	}
	commit := func(clone, file, body, msg string) {
		t.Helper()
		git(clone, "pull", "-q", "--rebase", "origin", "main")
		if err := os.WriteFile(filepath.Join(clone, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		git(clone, "commit", "-q", "-am", msg)
		git(clone, "push", "-q", "origin", "HEAD:main")
	}
	timings := map[string]time.Duration{}

	t.Run("first deploy from A", func(t *testing.T) {
		res, r := ci(t, a, "runner A", "web", "dns")
		timings["first deploy"] = r.elapsed
		if got := results(res); r.code != 0 || got["web"] != "rolled-out" || got["dns"] != "rolled-out" {
			t.Fatalf("exit %d, results %v", r.code, got)
		}
	})
	t.Run("a commit to web rolls out web only", func(t *testing.T) {
		commit(a, "web/index.html", "<h1>commit 1</h1>\n", "web: commit 1")
		res, r := ci(t, a, "runner A", "web", "dns")
		timings["web commit"] = r.elapsed
		if got := results(res); r.code != 0 || got["web"] != "rolled-out" || got["dns"] != "up-to-date" {
			t.Fatalf("exit %d, results %v", r.code, got)
		}
		if got := get(t, "http://127.0.0.131/"); !strings.Contains(got, "commit 1") {
			t.Errorf("the failover address answers %q", got)
		}
	})
	var webImage string
	t.Run("a commit to dns from B, which never built web", func(t *testing.T) {
		commit(b, "dns/lab.example.zone", zoneWith(t, b, "commit2 IN TXT \"commit 2\""), "dns: commit 2")
		list := droverExec(t, nil, "--fleet", filepath.Join(b, "drover.hcl"), "--output", "json", "images", "list")
		var imgs []struct {
			Role     string `json:"role"`
			Identity string `json:"identity"`
			DiskHere *bool  `json:"disk_here"`
		}
		if err := json.Unmarshal([]byte(list.stdout), &imgs); err != nil {
			t.Fatalf("images list in B: %v\n%s", err, list.stdout)
		}
		for _, i := range imgs { // newest first
			if i.Role == "web" && i.DiskHere != nil && !*i.DiskHere {
				webImage = i.Identity
				break
			}
		}
		if webImage == "" {
			t.Errorf("B's images list does not show web's image, built by A, with its disk elsewhere:\n%s", list.stdout)
		}
		res, r := ci(t, b, "runner B", "web", "dns")
		timings["dns commit from B"] = r.elapsed
		if got := results(res); r.code != 0 || got["web"] != "up-to-date" || got["dns"] != "rolled-out" {
			t.Fatalf("exit %d, results %v", r.code, got)
		}
		for _, role := range res.Roles {
			if role.Role == "web" && role.Image != webImage {
				t.Errorf("B computed web's image %s, A built %s", role.Image, webImage)
			}
		}
	})
	t.Run("a commit that changes no image", func(t *testing.T) {
		git(a, "pull", "-q", "--rebase", "origin", "main")
		git(a, "commit", "-q", "--allow-empty", "-m", "nothing")
		res, r := ci(t, a, "runner A", "web", "dns")
		timings["no-op"] = r.elapsed
		if got := results(res); r.code != 0 || got["web"] != "up-to-date" || got["dns"] != "up-to-date" {
			t.Fatalf("exit %d, results %v", r.code, got)
		}
		// dns's running image was built by B: A needs no disk of it and builds nothing.
		if strings.Contains(r.stderr, `"event":"image"`) || strings.Contains(r.stderr, `"event":"step"`) {
			t.Errorf("the no-op run built something:\n%s", r.stderr)
		}
	})
	t.Run("two runs of one role at once", func(t *testing.T) {
		commit(a, "web/index.html", "<h1>commit 3</h1>\n", "web: commit 3")
		git(b, "pull", "-q", "--rebase", "origin", "main")
		// B has the image too, so that its run reaches the lock while A's rollout holds it.
		if r := droverExec(t, nil, "--fleet", filepath.Join(b, "drover.hcl"), "build", "web"); r.code != 0 {
			t.Fatalf("build web in B: exit %d", r.code)
		}
		runA := droverStream(t, []string{"DROVER_OWNER=runner A"}, "--fleet", filepath.Join(a, "drover.hcl"), "ci", "web")
		if _, ok := runA.until(transitionTo(rollout.Booting)); !ok {
			t.Fatalf("A's run ended before booting: %+v", runA.wait())
		}
		res, r := ci(t, b, "runner B", "web")
		if r.code != 1 || results(res)["web"] != "failed" || !strings.Contains(r.stdout+r.stderr, "runner A") {
			t.Errorf("B's run while A holds web: exit %d, results %v; want refused, naming runner A", r.code, results(res))
		}
		waiting := droverStream(t, []string{"DROVER_OWNER=runner B"}, "--fleet", filepath.Join(b, "drover.hcl"), "--wait", "5m", "ci", "web")
		ra, rb := runA.wait(), waiting.wait()
		if ra.code != 0 {
			t.Fatalf("A's run: exit %d\n%s", ra.code, ra.stderr)
		}
		var resB ciResult
		if err := json.Unmarshal([]byte(rb.stdout), &resB); err != nil || rb.code != 0 || results(resB)["web"] != "up-to-date" {
			t.Errorf("B's run with --wait: exit %d, %v, %s\n%s", rb.code, err, rb.stdout, rb.stderr)
		}
		if !strings.Contains(rb.stderr, "runner A") {
			t.Errorf("B's wait never named the holder:\n%s", rb.stderr)
		}
		if got := get(t, "http://127.0.0.131/"); !strings.Contains(got, "commit 3") {
			t.Errorf("the failover address answers %q", got)
		}
	})
	t.Run("the runner holding the lock is killed", func(t *testing.T) {
		commit(a, "web/index.html", "<h1>commit 4</h1>\n", "web: commit 4")
		git(b, "pull", "-q", "--rebase", "origin", "main")
		if r := droverExec(t, nil, "--fleet", filepath.Join(b, "drover.hcl"), "build", "web"); r.code != 0 {
			t.Fatalf("build web in B: exit %d", r.code)
		}
		runA := droverStream(t, []string{"DROVER_OWNER=runner A"}, "--fleet", filepath.Join(a, "drover.hcl"), "ci", "web")
		if _, ok := runA.until(transitionTo(rollout.Booting)); !ok {
			t.Fatalf("A's run ended before booting: %+v", runA.wait())
		}
		if err := runA.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if ra := runA.wait(); ra.code != 128+int(syscall.SIGKILL) {
			t.Fatalf("A's run was not killed: exit %d", ra.code)
		}
		// A's lease in etcd is not renewed any more: B waits for it to run out, then finishes the
		// rollout A started (the same image) rather than starting another.
		r := droverExec(t, []string{"DROVER_OWNER=runner B"}, "--fleet", filepath.Join(b, "drover.hcl"), "--output", "json", "--wait", "3m", "ci", "web")
		var res ciResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || results(res)["web"] != "rolled-out" {
			t.Fatalf("B's run after A was killed: exit %d, %v, %s\n%s", r.code, err, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "runner A") {
			t.Errorf("B's wait never named the killed holder:\n%s", r.stderr)
		}
		timings["after a killed runner"] = r.elapsed
		if got := get(t, "http://127.0.0.131/"); !strings.Contains(got, "commit 4") {
			t.Errorf("the failover address answers %q", got)
		}
	})
	vms := labVMs(t, labDir)
	if len(vms) != 2 {
		t.Errorf("the shared lab runs %d VMs (%v), want web's and dns's green only", len(vms), vms)
	}
	t.Logf("drover ci: first deploy %s, web commit %s, dns commit from B %s, no-op %s, after a killed runner (lease expiry and the rest of its rollout) %s",
		timings["first deploy"].Round(time.Millisecond), timings["web commit"].Round(time.Millisecond),
		timings["dns commit from B"].Round(time.Millisecond), timings["no-op"].Round(time.Millisecond), timings["after a killed runner"].Round(time.Millisecond))
}

// zoneWith returns the clone's lab.example zone with one more record line.
func zoneWith(t *testing.T, clone, record string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(clone, "dns/lab.example.zone"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + record + "\n"
}
