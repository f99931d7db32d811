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
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
)

// TestE2ERollout runs blue/green rollouts of the example's web role on real qemu VMs in the lab:
// first deploy, a second rollout with a changed page, rollback inside keep_old, abort, a green that
// fails its checks, and a drover killed mid-rollout that is run again. Every VM is killed by its PID
// when the test ends.
func TestE2ERollout(t *testing.T) {
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
	editFleet(t, fleetFile, `watch    = "1m"`, `watch    = "10s"`)
	editFleet(t, fleetFile, `keep_old = "15m"`, `keep_old = "30s"`)
	lab, err := qemu.New(qemu.NewDefaultConfig(os.LookupEnv), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })

	drover := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		return droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := drover(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
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
		list, err := lab.Instances(context.Background(), compute.Selector{"role": "web"})
		if err != nil {
			t.Fatal(err)
		}
		var live []compute.Instance
		for _, i := range list {
			if i.State != compute.Terminated {
				live = append(live, i)
			}
		}
		return live
	}

	t.Run("first deploy", func(t *testing.T) {
		page(t, "1")
		must(t, "rollout", "start", "web")
		must(t, "rollout", "promote", "web")
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 2 {
			t.Errorf("%d web instances, want 2", n)
		}
	})

	t.Run("second rollout with a changed page, then rollback inside keep_old", func(t *testing.T) {
		page(t, "2")
		must(t, "rollout", "start", "web")
		serves(t, "web version 1") // green is ready but takes no traffic before promote
		must(t, "rollout", "promote", "web")
		serves(t, "web version 2")
		if n := len(webInstances(t)); n != 4 {
			t.Errorf("%d web instances during keep_old, want 4 (blue kept)", n)
		}
		r := must(t, "rollout", "rollback", "web")
		if r.elapsed > 2*time.Second {
			t.Errorf("rollback took %s, want under 2s", r.elapsed)
		}
		serves(t, "web version 1")
		t.Logf("rollback inside keep_old: %s", r.elapsed)
	})

	t.Run("abort destroys green and leaves blue serving", func(t *testing.T) {
		page(t, "3")
		must(t, "rollout", "start", "web")
		must(t, "rollout", "abort", "web")
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 2 {
			t.Errorf("%d web instances after abort, want blue's 2", n)
		}
	})

	t.Run("a green that fails its health check is never cut over and is destroyed", func(t *testing.T) {
		editFleet(t, fleetFile, `path   = "/"`, `path   = "/missing.html"`)
		defer editFleet(t, fleetFile, `path   = "/missing.html"`, `path   = "/"`)
		editFleet(t, fleetFile, `expect = 200`, `expect = 200
      deadline = "3m"`)
		defer editFleet(t, fleetFile, `expect = 200
      deadline = "3m"`, `expect = 200`)
		page(t, "4")
		r := drover(t, nil, "rollout", "start", "web")
		if r.code != 1 || !strings.Contains(r.stderr, "404") {
			t.Errorf("exit %d, want 1 naming the 404:\n%s", r.code, r.stderr)
		}
		serves(t, "web version 1")
		if n := len(webInstances(t)); n != 2 {
			t.Errorf("%d web instances after a failed green, want blue's 2", n)
		}
	})

	t.Run("a drover killed after booting is run again and converges", func(t *testing.T) {
		page(t, "5")
		r := drover(t, []string{"DROVER_TEST_CRASH_AFTER=booting"}, "rollout", "start", "web")
		if r.code != 137 {
			t.Fatalf("exit %d, want 137 from the crash hook", r.code)
		}
		must(t, "rollout", "start", "web")
		must(t, "rollout", "promote", "web")
		serves(t, "web version 5")
		st := must(t, "--output", "json", "rollout", "status", "web")
		var status struct {
			Instances []struct {
				Owned bool `json:"owned"`
			} `json:"instances"`
		}
		if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
			t.Fatal(err)
		}
		for _, i := range status.Instances {
			if !i.Owned {
				t.Errorf("an orphan instance after the rerun: %s", st.stdout)
			}
		}
		if n := len(webInstances(t)); n != 4 {
			t.Errorf("%d web instances, want 4 (green and the kept blue): no orphan from the killed run", n)
		}
	})

	t.Run("blue is destroyed once keep_old has passed", func(t *testing.T) {
		time.Sleep(35 * time.Second)
		must(t, "rollout", "tick", "web")
		if n := len(webInstances(t)); n != 2 {
			t.Errorf("%d web instances after keep_old, want green's 2", n)
		}
		serves(t, "web version 5")
	})
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
