//go:build e2e && lab

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
	"github.com/drover-dev/drover/rollout"
)

// TestE2ERollout runs blue/green rollouts of the example's web role on real qemu VMs in the lab:
// first deploy, a second rollout with a changed page under a request loop, rollback inside
// keep_old, abort, a green that fails its checks, a green that dies after cutover (the watch rolls
// back), and drover killed with SIGKILL right after every transition and run again. Every VM is
// killed by its PID when the test ends, and orphans are checked against the host's qemu processes.
func TestE2ERollout(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores), its lab on addresses of its own (127.0.161.0/24): much of it is waiting
	// (health checks that must fail, the watch, keep_old), which the other test fills.
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	// A failover address of its own, so the test never meets a demo's lab on this machine.
	addr := "127.0.0.123"
	editFleet(t, fleetFile, `address = "127.0.0.100"`, `address = "`+addr+`"`)
	labCfg := labNetwork(t, fleetFile, "127.0.161.0/24")
	editFleet(t, fleetFile, `watch    = var.watch`, `watch    = "10s"`)
	editFleet(t, fleetFile, `keep_old = "15m"`, `keep_old = "30s"`)
	// One instance per color: every VM is emulated (TCG) on two cores, and one is enough to prove
	// each behaviour; the demo rolls out two.
	editFleet(t, fleetFile, `count   = 2`, `count   = 1`)
	// The lab's Knot, where web's failover address is published as www.
	knotd := knot.Start(t, "lab.example.")
	editFleet(t, fleetFile, `server   = "127.0.0.1:5353"`, `server   = "`+knotd.Addr+`"`)
	editFleet(t, fleetFile, `key_name = "drover"`, `key_name = "`+knotd.KeyName+`"`)
	labEnv := []string{"DROVER_TSIG_SECRET=" + knotd.Secret}
	lab, err := qemu.New(labCfg, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })

	var peakRSS int64
	drover := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		r := droverExec(t, append(labEnv, env...), append([]string{"--fleet", fleetFile}, args...)...)
		peakRSS = max(peakRSS, r.maxRSS)
		return r
	}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := drover(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}
	stream := func(t *testing.T, args ...string) *streamed {
		return droverStream(t, labEnv, append([]string{"--fleet", fleetFile}, args...)...)
	}
	page := func(t *testing.T, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(fleetDir, "web/index.html"), []byte("<h1>web version "+v+"</h1>\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		must(t, "build", "web")
	}
	serves := func(t *testing.T, want string) {
		t.Helper()
		if got := get(t, "http://"+addr+"/"); !strings.Contains(got, want) {
			t.Fatalf("%s answers %q, want %q", addr, got, want)
		}
	}
	webInstances := func(t *testing.T) []compute.Instance {
		t.Helper()
		return liveInstances(t, lab, compute.Selector{"role": "web"})
	}
	// noOrphans compares the host's qemu processes of this lab with the instances the role's
	// rollouts own, and returns "qemu=N owned=N".
	noOrphans := func(t *testing.T) string {
		t.Helper()
		st := must(t, "--output", "json", "rollout", "status", "web")
		var status struct {
			Instances []statusInstance `json:"instances"`
		}
		if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
			t.Fatal(err)
		}
		vms := labVMs(t, state)
		owned := 0
		for _, i := range status.Instances {
			if i.State == string(compute.Terminated) {
				continue
			}
			if !i.Owned {
				t.Errorf("instance %s (%s) is owned by no rollout", i.ID, i.State)
				continue
			}
			owned++
			if _, ok := vms[i.ID]; !ok && i.State == string(compute.Running) {
				t.Errorf("instance %s is running by the records but has no qemu process", i.ID)
			}
		}
		for id, pid := range vms {
			if !slices.ContainsFunc(status.Instances, func(i statusInstance) bool {
				return i.ID == id && i.Owned && i.State != string(compute.Terminated)
			}) {
				t.Errorf("orphan VM: qemu pid %d (%s) belongs to no rollout", pid, id)
			}
		}
		return fmt.Sprintf("qemu=%d owned=%d", len(vms), owned)
	}

	t.Run("first deploy", func(t *testing.T) {
		page(t, "1")
		start := stream(t, "rollout", "start", "web")
		var launched, healthy time.Duration
		for e := range start.events {
			switch {
			case e.Step == "launch":
				launched = e.Elapsed
			case e.Step == "health" && strings.Contains(e.Message, ": healthy"):
				healthy = max(healthy, e.Elapsed)
			}
		}
		sr := start.wait()
		if sr.code != 0 {
			t.Fatalf("rollout start: exit %d\n%s%s", sr.code, sr.stdout, sr.stderr)
		}
		promote := stream(t, "rollout", "promote", "web")
		var draining, promoted time.Duration
		for e := range promote.events {
			switch {
			case e.Kind == "transition" && e.State == rollout.Draining:
				draining = e.Elapsed
			case e.Kind == "transition" && e.State == rollout.Promoted:
				promoted = e.Elapsed
			}
		}
		pr := promote.wait()
		if pr.code != 0 {
			t.Fatalf("rollout promote: exit %d\n%s%s", pr.code, pr.stdout, pr.stderr)
		}
		serves(t, "web version 1")
		if got := knotd.Query(t, "www.lab.example.", "A"); len(got.Answer) != 1 || !strings.Contains(got.Answer[0].String(), addr) {
			t.Errorf("www.lab.example at the lab's Knot: %v, want the failover address %s", got.Answer, addr)
		}
		if n := len(webInstances(t)); n != 1 {
			t.Errorf("%d web instances, want 1", n)
		}
		bootToHealthy := healthy - launched
		watch := promoted - draining // the watch window, which the deploy asks for: not overhead
		overhead := sr.elapsed - bootToHealthy + pr.elapsed - watch
		t.Logf("MEASURE rollout overhead: start %s + promote %s - boot-to-healthy %s - watch %s = %s",
			sr.elapsed.Round(time.Millisecond), pr.elapsed.Round(time.Millisecond), bootToHealthy.Round(time.Millisecond), watch, overhead.Round(time.Millisecond))
		peakRSS = max(peakRSS, sr.maxRSS, pr.maxRSS)
		noOrphans(t)
	})

	t.Run("second rollout with a changed page under a request loop, then rollback inside keep_old", func(t *testing.T) {
		page(t, "2")
		must(t, "rollout", "start", "web")
		serves(t, "web version 1") // green is ready but takes no traffic before promote
		loop := startRequestLoop("http://"+addr+"/", 5*time.Millisecond)
		// The moments drover starts and finishes moving the address, as the events arrive.
		promote := stream(t, "rollout", "promote", "web")
		var moveStart, moveEnd time.Time
		for e := range promote.events {
			switch {
			case e.Kind == "transition" && e.State == rollout.CuttingOver:
				moveStart = time.Now()
			case e.Kind == "transition" && e.State == rollout.Draining:
				moveEnd = time.Now()
			}
		}
		if pr := promote.wait(); pr.code != 0 {
			t.Fatalf("rollout promote: exit %d\n%s%s", pr.code, pr.stdout, pr.stderr)
		}
		res := loop.stop()
		t.Logf("MEASURE cutover under a request loop: %d answered, %d failed, longest gap across the move %s, longest gap of the whole promote (watch included) %s, pages %v",
			res.ok, res.failed, res.gapAround(moveStart, moveEnd).Round(time.Millisecond), res.longestGap.Round(time.Millisecond), sortedKeys(res.bodies))
		if res.ok == 0 || len(res.bodies) < 2 {
			t.Errorf("the loop saw pages %v, want both versions", res.bodies)
		}
		serves(t, "web version 2")
		if n := len(webInstances(t)); n != 2 {
			t.Errorf("%d web instances during keep_old, want 2 (blue kept)", n)
		}
		r := must(t, "rollout", "rollback", "web")
		if r.elapsed > 2*time.Second {
			t.Errorf("rollback took %s, want under 2s", r.elapsed)
		}
		serves(t, "web version 1")
		t.Logf("MEASURE rollback inside keep_old: %s", r.elapsed.Round(time.Millisecond))
		noOrphans(t)
	})

	t.Run("abort destroys green and leaves blue serving", func(t *testing.T) {
		page(t, "3")
		must(t, "rollout", "start", "web")
		must(t, "rollout", "abort", "web")
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 1 {
			t.Errorf("%d web instances after abort, want blue's 1", n)
		}
		noOrphans(t)
	})

	t.Run("a green that fails its health check is never cut over and is destroyed", func(t *testing.T) {
		editFleet(t, fleetFile, `path   = "/"`, `path   = "/missing.html"`)
		defer editFleet(t, fleetFile, `path   = "/missing.html"`, `path   = "/"`)
		editFleet(t, fleetFile, `expect = 200`, `expect = 200
      deadline = "2m"`)
		defer editFleet(t, fleetFile, `expect = 200
      deadline = "2m"`, `expect = 200`)
		page(t, "4")
		r := drover(t, nil, "rollout", "start", "web")
		if r.code != 1 || !strings.Contains(r.stderr, "404") {
			t.Errorf("exit %d, want 1 naming the 404:\n%s", r.code, r.stderr)
		}
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 1 {
			t.Errorf("%d web instances after a failed green, want blue's 1", n)
		}
		noOrphans(t)
	})

	t.Run("a green that dies after cutover is rolled back by the watch", func(t *testing.T) {
		editFleet(t, fleetFile, `watch    = "10s"`, `watch    = "45s"`)
		defer editFleet(t, fleetFile, `watch    = "45s"`, `watch    = "10s"`)
		page(t, "6")
		must(t, "rollout", "start", "web")
		p := stream(t, "rollout", "promote", "web")
		e, ok := p.until(transitionTo(rollout.Draining))
		if !ok {
			t.Fatalf("promote ended before draining: %+v", p.wait())
		}
		serves(t, "web version 6")
		greens, err := lab.Instances(context.Background(), compute.Selector{"role": "web", "rollout": e.Rollout})
		if err != nil || len(greens) == 0 {
			t.Fatalf("green instances of %s: %v %v", e.Rollout, greens, err)
		}
		for _, g := range greens {
			if err := lab.Stop(context.Background(), g.ID); err != nil { // the machine dies
				t.Fatal(err)
			}
		}
		r := p.wait()
		peakRSS = max(peakRSS, r.maxRSS)
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "watch") {
			t.Errorf("promote exit %d, want 1 naming the watch:\n%s", r.code, r.stderr)
		}
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 1 {
			t.Errorf("%d web instances after the watch rolled back, want blue's 1", n)
		}
		noOrphans(t)
	})

	t.Run("drover killed with SIGKILL right after each transition converges when run again", func(t *testing.T) {
		page(t, "7")
		var table []string
		chain := []struct {
			cmd    string
			points []rollout.State
		}{
			{"start", []rollout.State{rollout.Planned, rollout.Booting, rollout.Checking, rollout.Ready}},
			{"promote", []rollout.State{rollout.CuttingOver, rollout.Draining, rollout.Promoted}},
			{"rollback", []rollout.State{rollout.RolledBack}},
		}
		for _, c := range chain {
			for _, pt := range c.points {
				s := stream(t, "rollout", c.cmd, "web")
				e, ok := s.until(transitionTo(pt))
				if !ok {
					t.Fatalf("%s ended before %s: %+v", c.cmd, pt, s.wait())
				}
				_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
				r := s.wait()
				if !killedOrDone(r, pt, c.points) {
					t.Errorf("%s killed after %s: exit %d, want 137 (or 0 after its last transition)", c.cmd, pt, r.code)
				}
				table = append(table, fmt.Sprintf("%-9s killed after %-12s (%s at %s)", c.cmd, pt, e.Rollout, e.Elapsed.Round(time.Millisecond)))
			}
			// The same command again finishes the job from where the killed ones stopped.
			r := drover(t, nil, "--output", "json", "rollout", c.cmd, "web")
			vms := noOrphans(t)
			table = append(table, fmt.Sprintf("%-9s rerun: exit %d in %s, %s, orphans 0 unless reported above", c.cmd, r.code, r.elapsed.Round(time.Millisecond), vms))
			if r.code != 0 {
				t.Errorf("%s rerun after the kills: exit %d\n%s", c.cmd, r.code, r.stderr)
			}
		}
		serves(t, "web version 1")
		t.Logf("MEASURE kill -9 at each transition (command, transition, outcome):\n%s", strings.Join(table, "\n"))
	})

	t.Run("blue is destroyed once keep_old has passed", func(t *testing.T) {
		must(t, "rollout", "start", "web")
		must(t, "rollout", "promote", "web")
		serves(t, "web version 7")
		time.Sleep(35 * time.Second)
		must(t, "rollout", "tick", "web")
		if n := len(webInstances(t)); n != 1 {
			t.Errorf("%d web instances after keep_old, want green's 1", n)
		}
		serves(t, "web version 7")
		noOrphans(t)
	})
	t.Logf("MEASURE drover peak memory (max RSS of every drover run): %d MiB", peakRSS/1024)
}

// statusInstance is an instance as drover rollout status --output json lists it.
type statusInstance struct {
	ID    string `json:"id"`
	Owned bool   `json:"owned"`
	State string `json:"state"`
}

func editFleet(t *testing.T, path, from, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), from) {
		t.Fatalf("%s does not contain %q", path, from)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	// No keep-alive: a pooled connection would still reach the instance that held the address when it
	// was opened, which is not what a new client sees after a cutover.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last error
	for i := 0; i < 10; i++ {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return "error: " + last.Error()
}

// terminateAll stops every VM of the lab, whatever the test left.
func terminateAll(t *testing.T, lab *qemu.Provider) {
	list, err := lab.Instances(context.Background(), nil)
	if err != nil {
		t.Errorf("listing the lab's VMs: %v", err)
		return
	}
	for _, i := range list {
		if err := lab.Terminate(context.Background(), i.ID); err != nil {
			t.Errorf("terminating %s: %v", i.ID, err)
		}
	}
}
