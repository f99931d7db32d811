//go:build e2e && lab

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// streamed is a drover run whose JSON events the test reads as they come, so it can act at a
// transition: kill drover with SIGKILL, or break an instance.
type streamed struct {
	cmd    *exec.Cmd
	events chan rollout.Event
	done   chan result
}

func droverStream(t *testing.T, env []string, args ...string) *streamed {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "drover"), append([]string{"--output", "json"}, args...)...)
	cmd.Env = append(append(append(os.Environ(), "DROVER_BOOT_DIR="+binDir, "CI=true"), sharedCache()...), env...)
	// --output json streams the rollout's events as JSON lines on stderr; stdout gets the one
	// result object.
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &streamed{cmd: cmd, events: make(chan rollout.Event, 1024), done: make(chan result, 1)}
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			// --output json prints each rollout event on stderr as {"event": "rollout", "detail": EVENT}.
			var line struct {
				Event  string        `json:"event"`
				Detail rollout.Event `json:"detail"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Event == "rollout" {
				s.events <- line.Detail
			}
		}
		close(s.events)
		err := cmd.Wait()
		r := result{stdout: stdout.String(), stderr: all.String(), elapsed: time.Since(start), maxRSS: maxRSSOf(cmd)}
		if exit, ok := err.(*exec.ExitError); ok {
			r.code = exit.ExitCode()
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				r.code = 128 + int(ws.Signal())
			}
		}
		s.done <- r
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return s
}

// until reads events until one matches, and returns it; false when drover ended first.
func (s *streamed) until(match func(rollout.Event) bool) (rollout.Event, bool) {
	for e := range s.events {
		if match(e) {
			return e, true
		}
	}
	return rollout.Event{}, false
}

// wait drains the events and returns the run's result.
func (s *streamed) wait() result {
	for range s.events {
	}
	return <-s.done
}

// killChain is what the cloud tests kill drover in: each rollout command, SIGKILLed right after
// each of its transitions in turn.
var killChain = []struct {
	cmd    string
	points []rollout.State
}{
	{"start", []rollout.State{rollout.Planned, rollout.Booting, rollout.Checking, rollout.Ready}},
	{"promote", []rollout.State{rollout.CuttingOver, rollout.Draining, rollout.Promoted}},
	{"rollback", []rollout.State{rollout.RolledBack}},
}

// killAfterEachTransition runs each command of killChain on the role web through stream, SIGKILLing
// drover right after each of its transitions, then once more through run to the end, which must
// exit 0; report is given each command's rerun.
func killAfterEachTransition(t *testing.T, stream func(*testing.T, ...string) *streamed, run func(*testing.T, ...string) result,
	report func(cmd string, points []rollout.State, rerun result)) {
	t.Helper()
	for _, c := range killChain {
		for _, pt := range c.points {
			s := stream(t, "rollout", c.cmd, "web")
			if _, ok := s.until(transitionTo(pt)); !ok {
				t.Fatalf("%s ended before %s: %+v", c.cmd, pt, s.wait())
			}
			_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
			if r := s.wait(); !killedOrDone(r, pt, c.points) {
				t.Errorf("%s killed after %s: exit %d, want 137 (or 0 after its last transition)", c.cmd, pt, r.code)
			}
		}
		r := run(t, "rollout", c.cmd, "web")
		if r.code != 0 {
			t.Errorf("%s rerun after the kills: exit %d\n%s", c.cmd, r.code, r.stderr)
		}
		report(c.cmd, c.points, r)
	}
}

// killedOrDone reports whether a command sent SIGKILL right after it reported the transition to pt
// ended as it should: killed (exit 137), or, when pt is the command's last transition (points'
// last), possibly done already (exit 0): after the last transition is persisted the command only
// releases its lock and exits, and a loaded machine can deliver the signal after that.
func killedOrDone(r result, pt rollout.State, points []rollout.State) bool {
	return r.code == 137 || (r.code == 0 && pt == points[len(points)-1])
}

func transitionTo(st rollout.State) func(rollout.Event) bool {
	return func(e rollout.Event) bool { return e.Kind == "transition" && e.State == st }
}

// labVMs lists the qemu processes of a state directory, by the instance ID in their -name: the
// ground truth for orphans, whatever drover's records say.
func labVMs(t *testing.T, state string) map[string]int {
	t.Helper()
	out := map[string]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "qemu-system") || !strings.Contains(string(b), state) {
			continue
		}
		for i, a := range args {
			if a == "-name" && i+1 < len(args) {
				id := strings.TrimPrefix(strings.Split(args[i+1], ",")[0], "guest=")
				var pid int
				fmt.Sscanf(strings.Split(p, "/")[2], "%d", &pid)
				out[id] = pid
			}
		}
	}
	return out
}

// requestLoop asks url without keep-alive every interval until stop is called, and reports failed
// requests, the longest time between two answered requests, and when each answer came.
type requestLoop struct {
	stop func() loopResult
}

type loopResult struct {
	ok, failed int
	longestGap time.Duration
	bodies     map[string]int
	answered   []time.Time
}

// gapAround is the longest time between two consecutive answers of which the span meets [t0, t1]:
// what a client saw of a change made between t0 and t1 (0 when no answer came on one side).
func (r loopResult) gapAround(t0, t1 time.Time) time.Duration {
	var longest time.Duration
	for i := 1; i < len(r.answered); i++ {
		a, b := r.answered[i-1], r.answered[i]
		if !b.Before(t0) && !a.After(t1) {
			longest = max(longest, b.Sub(a))
		}
	}
	return longest
}

func startRequestLoop(url string, interval time.Duration) *requestLoop {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		res = loopResult{bodies: map[string]int{}}
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := time.Now()
		for ctx.Err() == nil {
			resp, err := client.Get(url)
			now := time.Now()
			mu.Lock()
			if err == nil && resp.StatusCode == 200 {
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				res.ok++
				res.bodies[strings.TrimSpace(b.String())]++
				res.longestGap = max(res.longestGap, now.Sub(last))
				res.answered = append(res.answered, now)
				last = now
			} else if ctx.Err() == nil {
				res.failed++
			}
			if resp != nil {
				resp.Body.Close()
			}
			mu.Unlock()
			time.Sleep(interval)
		}
	}()
	return &requestLoop{stop: func() loopResult {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return res
	}}
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// labNetwork gives the example fleet's lab, copied to fleetFile, a loopback network of the test's
// own, so that its VMs' addresses meet no other lab's: tests that run side by side, or a demo. It
// returns the lab's configuration with that network, for the test's own view of the lab.
func labNetwork(t *testing.T, fleetFile, network string) *qemu.Config {
	t.Helper()
	editFleet(t, fleetFile, `  accel  = "auto"
}`, `  accel   = "auto"
  network = "`+network+`"
}`)
	cfg := qemu.NewDefaultConfig(os.LookupEnv)
	cfg.Network = network
	return cfg
}
