//go:build e2e

package loopback_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk/disktest"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/iptest"
	"github.com/drover-dev/drover/plugins/ip/loopback"
)

const bootDeadline = 5 * time.Minute

// A failover address of the test's own, so it never meets a demo's lab (127.0.0.100) on this machine.
var failover = netip.MustParseAddr("127.0.0.131")

// TestFailoverE2E boots two real instances whose pages differ by their
// user-data, moves the failover address between them and sees HTTP through it
// answered by the holder, measuring the longest gap of a request loop
// during each move. Then it runs the contract suite on the same VMs.
func TestFailoverE2E(t *testing.T) {
	img := disktest.LabImage(t)
	state := t.TempDir()
	killAll(t, state)
	cfg := qemu.NewDefaultConfig(config.OS())
	cfg.Network = "127.0.13.0/24"
	lab, err := qemu.New(cfg, state)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), bootDeadline+5*time.Minute)
	defer cancel()

	start := time.Now()
	names := []string{"A", "B"}
	ids := map[string]string{}
	var wg sync.WaitGroup
	for _, name := range names {
		in, err := lab.Launch(ctx, compute.Spec{
			Token: "failover-e2e-" + name, Name: name,
			Image:    compute.Image{Identity: "lab-nginx", Path: img},
			Labels:   map[string]string{"role": "web"},
			Ports:    []int{80},
			UserData: []byte(name),
		})
		if err != nil {
			t.Fatalf("Launch %s: %v", name, err)
		}
		ids[name], ids[in.ID] = in.ID, name
		wg.Go(func() {
			if _, err := get(ctx, in.Endpoint(80), start.Add(bootDeadline)); err != nil {
				t.Errorf("%s (%s): %v", name, in.ID, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("both instances answer HTTP %s after launch", time.Since(start).Round(time.Second))

	p, err := loopback.New(&loopback.Config{Address: failover.String()}, lab, state)
	if err != nil {
		t.Fatal(err)
	}
	holder := func(want string) {
		t.Helper()
		got, err := p.Holder(ctx, failover)
		if err != nil || got != ids[want] {
			t.Fatalf("Holder = %q, %v; want %s (%q)", got, err, want, ids[want])
		}
	}
	answers := func(want string) {
		t.Helper()
		body, err := get(ctx, netip.AddrPortFrom(failover, 80), time.Now().Add(5*time.Second))
		if err != nil || body != want {
			t.Fatalf("GET through %v = %q, %v; want %q", failover, body, err, want)
		}
	}
	holder("")
	if err := p.Assign(ctx, failover, ids["A"]); err != nil {
		t.Fatal(err)
	}
	holder("A")
	answers("A")
	if err := p.Assign(ctx, failover, ids["A"]); err != nil {
		t.Fatalf("assigning the holder again: %v", err)
	}
	holder("A")
	answers("A")

	// The longest gap between answers is mostly the TCG guests' own
	// latency, so a second without a move is measured for comparison; the
	// move's own share shows as the window of refused connections. (A loop
	// of bare TCP connects would measure qemu's listen backlog of 1 instead:
	// SYNs it drops wait a second for their retransmission.)
	for _, to := range []string{"", "B", "A", "B"} {
		var move func() error
		if to != "" {
			move = func() error { return p.Assign(ctx, failover, ids[to]) }
		}
		st := underLoad(t, httpProbe(), move)
		if to == "" {
			t.Logf("no move: longest gap between answers %s, %d errors, answered by %v",
				st.gap.Round(time.Microsecond), st.errors, st.served)
			continue
		}
		holder(to)
		answers(to)
		t.Logf("move to %s: Assign took %s; longest gap between answers %s; refused for %s (%d errors); answered by %v",
			to, st.took.Round(time.Microsecond), st.gap.Round(time.Microsecond),
			st.refused.Round(time.Microsecond), st.errors, st.served)
		if st.refused > time.Second {
			t.Errorf("move to %s: connections refused for %s", to, st.refused)
		}
	}

	// A new process sees the same holder.
	lab2, _ := qemu.New(cfg, state)
	p2, err := loopback.New(&loopback.Config{Address: failover.String()}, lab2, state)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p2.Holder(ctx, failover); err != nil || got != ids["B"] {
		t.Fatalf("a new provider's Holder = %q, %v; want B", got, err)
	}

	t.Run("Contract", func(t *testing.T) {
		next := 110
		var mu sync.Mutex
		iptest.Run(t, func(t *testing.T) iptest.Fixture {
			mu.Lock()
			a0 := netip.AddrFrom4([4]byte{127, 0, 0, byte(next)})
			a1 := netip.AddrFrom4([4]byte{127, 0, 0, byte(next + 1)})
			next += 2
			mu.Unlock()
			return iptest.Fixture{
				Provider:  p,
				Addrs:     []netip.Addr{a0, a1},
				Instances: []string{ids["A"], ids["B"]},
				Unknown:   "vm-000000000000",
				Reopen: func(t *testing.T) ip.Provider {
					q, err := loopback.New(&loopback.Config{Address: failover.String()}, lab2, state)
					if err != nil {
						t.Fatal(err)
					}
					return q
				},
			}
		}, iptest.Options{Timeout: time.Minute})
	})
}

// loadStats is what a request loop saw in a window of time.
type loadStats struct {
	gap     time.Duration  // longest time between two answers
	refused time.Duration  // from the first refused connection to the last
	errors  int            // failed requests
	served  map[string]int // answers by who answered
	took    time.Duration  // how long the move took
}

// probe makes one request through the failover address and says who
// answered.
type probe func() (string, error)

// httpProbe GETs the page over a new connection each time, so each request
// goes where the forward is now.
func httpProbe() probe {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + netip.AddrPortFrom(failover, 80).String() + "/userdata.txt"
	return func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s", resp.Status)
		}
		return string(body), nil
	}
}

// underLoad runs probe in a tight loop for a second, calling move (if not
// nil) half a second in.
func underLoad(t *testing.T, probe probe, move func() error) loadStats {
	t.Helper()
	st := loadStats{served: map[string]int{}}
	var answered []time.Time
	var firstRefused, lastRefused time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			who, err := probe()
			switch {
			case err == nil:
				answered = append(answered, time.Now())
				st.served[who]++
			case strings.Contains(err.Error(), "connection refused"):
				if firstRefused.IsZero() {
					firstRefused = time.Now()
				}
				lastRefused = time.Now()
				fallthrough
			default:
				st.errors++
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	var err error
	if move != nil {
		begin := time.Now()
		err = move()
		st.took = time.Since(begin)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("move: %v", err)
	}
	if len(answered) < 2 {
		t.Fatalf("%d answers in a second", len(answered))
	}
	for i := 1; i < len(answered); i++ {
		st.gap = max(st.gap, answered[i].Sub(answered[i-1]))
	}
	st.refused = lastRefused.Sub(firstRefused)
	return st
}

// get GETs /userdata.txt at ep until it answers 200 or the deadline passes.
func get(ctx context.Context, ep netip.AddrPort, deadline time.Time) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + ep.String() + "/userdata.txt"
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("no HTTP 200 from %s: %v", url, last)
}

// killAll kills, by PID, every VM whose pid file is under stateDir when the
// test ends, passed or failed.
func killAll(t *testing.T, stateDir string) {
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(stateDir, "lab", "instances", "*", "qemu.pid"))
		for _, f := range pids {
			b, _ := os.ReadFile(f)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				continue
			}
			if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmd), f) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}
