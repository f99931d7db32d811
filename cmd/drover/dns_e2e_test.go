//go:build e2e && lab

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/dns/dnstest/knot"
)

// TestE2EDNSCutover rolls the example's web role out through a DNS cutover on the lab: RFC 2136
// updates to a real Knot that the test starts on loopback, verified at that server, under a request
// loop that resolves www through Knot for every request. A cutover and a rollback lose no request.
func TestE2EDNSCutover(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done, its lab on
	// addresses of its own (127.0.163.0/24) and its own Knot.
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	srv := knot.Start(t, "lab.example.")
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	editFleet(t, fleetFile, `server   = "127.0.0.1:5353"`, `server   = "`+srv.Addr+`"`)
	editFleet(t, fleetFile, `key_name = "drover"`, `key_name = "`+srv.KeyName+`"`)
	labCfg := labNetwork(t, fleetFile, "127.0.163.0/24")
	editFleet(t, fleetFile, `cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }
    keep_old = "15m"`, `cutover "dns" {
      dns  = "home"
      name = "www"
      ttl  = 1
    }
    keep_old = "15m"`)
	editFleet(t, fleetFile, `watch    = var.watch`, `watch    = "5s"`)
	editFleet(t, fleetFile, `count   = 2`, `count   = 1`)
	lab, err := qemu.New(labCfg, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	env := []string{"DROVER_TSIG_SECRET=" + srv.Secret}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}
	page := func(t *testing.T, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(fleetDir, "web/index.html"), []byte("web version "+v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		must(t, "build", "web")
	}

	page(t, "1")
	must(t, "rollout", "start", "web")
	p1 := must(t, "rollout", "promote", "web")
	if got := fetchByName(srv.Addr, "www.lab.example."); !strings.Contains(got, "web version 1") {
		t.Fatalf("www through Knot: %q, want version 1", got)
	}
	logServed(t, p1.stdout)

	page(t, "2")
	must(t, "rollout", "start", "web")
	loop := startResolvingLoop(srv.Addr, "www.lab.example.", 20*time.Millisecond)
	p2 := must(t, "rollout", "promote", "web")
	time.Sleep(2 * time.Second) // past the 1 s TTL: every new request sees green
	if got := fetchByName(srv.Addr, "www.lab.example."); !strings.Contains(got, "web version 2") {
		t.Errorf("www after the cutover: %q, want version 2", got)
	}
	rb := must(t, "rollout", "rollback", "web")
	time.Sleep(2 * time.Second)
	ok, failed, pages, errs := loop.stop()
	t.Logf("MEASURE dns cutover and rollback under a resolving request loop: %d answered, %d failed, pages %v", ok, failed, pages)
	if failed != 0 {
		t.Errorf("%d request(s) failed during the cutover and rollback; first errors: %v", failed, errs)
	}
	if pages["web version 1"] == 0 || pages["web version 2"] == 0 {
		t.Errorf("the loop saw pages %v, want both versions", pages)
	}
	if got := fetchByName(srv.Addr, "www.lab.example."); !strings.Contains(got, "web version 1") {
		t.Errorf("www after the rollback: %q, want version 1", got)
	}
	logServed(t, p2.stdout+rb.stdout)
}

// logServed logs the cutover lines that say how long the servers took.
func logServed(t *testing.T, out string) {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "authoritative server") {
			t.Logf("MEASURE %s", strings.TrimSpace(l))
		}
	}
}

// resolve asks the server for name's A records, as a client with no cache would.
func resolve(server, name string) (string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	c := &mdns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return "", err
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			return a.A.String(), nil
		}
	}
	return "", fmt.Errorf("%s has no A record (rcode %s)", name, mdns.RcodeToString[r.Rcode])
}

func fetchByName(server, name string) string {
	addr, err := resolve(server, name)
	if err != nil {
		return "error: " + err.Error()
	}
	return getOnce(addr)
}

type resolvingLoop struct {
	stop func() (ok, failed int, pages map[string]int, errs []string)
}

// startResolvingLoop resolves name through server and fetches the page for every request.
func startResolvingLoop(server, name string, interval time.Duration) *resolvingLoop {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		ok     int
		failed int
		pages  = map[string]int{}
		errs   []string
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		for ctx.Err() == nil {
			got := fetchByName(server, name)
			mu.Lock()
			if body, found := strings.CutPrefix(got, "200 "); found {
				ok++
				pages[strings.TrimSpace(body)]++
			} else {
				failed++
				if len(errs) < 5 {
					errs = append(errs, got)
				}
			}
			mu.Unlock()
			time.Sleep(interval)
		}
	})
	return &resolvingLoop{stop: func() (int, int, map[string]int, []string) {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return ok, failed, pages, errs
	}}
}
