package main

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The e2e tests that run side by side take turns for the machine's cores through a gate that starts
// the longest first. go test resumes the paused parallel tests in no fixed order, and on two cores
// the suite ended with whichever long test happened to start last running alone, one core idle. The
// Taskfile raises go test's own limit (-parallel 64) for the e2e pass, so that every paused test
// reaches the gate at once and the gate is the limit: GOMAXPROCS tests at a time, chosen by
// laneOrder. Run without the raised limit (go test's default, GOMAXPROCS), the tests still take
// turns, in go test's order.

// laneOrder ranks the parallel e2e tests, longest first by their times in the suite (rehearsal 34
// in bench/results.md; TestE2EPiAB and TestE2EVaultRaftLab by their runs alone). A name ending in
// "/" ranks that test's subtests. A test not listed goes after these, in the order it arrives.
var laneOrder = []string{
	"TestE2EPiAB",                         // 1212 s alone (stop 29): eight boots of the emulated Pi
	"TestE2ECloudVolumes/",                // 761 s: three clouds per subtest group, a VM each
	"TestE2EDBHandoff",                    // 744 s
	"TestE2ECITeam",                       // 604 s
	"TestE2ERollout",                      // 552 s
	"TestE2EVaultRaftLab",                 // 506 s alone with its replacement (stop 31)
	"TestE2EReproducibleFromPinnedMirror", // 428 s: four base trees, no VM
	"TestE2EContainerBaked",               // 424 s
	"TestE2EPacker",                       // 325 s: a cold base tree
	"TestE2EDigitalOcean",                 // 296 s
	"TestE2ESecrets",                      // 285 s
	"TestE2EVultr",                        // 245 s
	"TestE2EAWS",                          // 220 s
	"TestE2ERPiCard",                      // 186 s with the arm64 tree cached
	"TestE2EDNSCutover",                   // 136 s
	"TestE2EVaultRaft",                    // 130 s
	"TestE2EThirdPartyRepository",         // 34 s
}

// e2eLanes is the one gate of the package's parallel e2e tests.
var e2eLanes = newLaneGate(runtime.GOMAXPROCS(0), 2*time.Second, laneOrder)

// takeLane waits for t's turn at the gate and gives the lane back when t ends, after t's other
// cleanups (its VMs stopped): call it right after t.Parallel().
func takeLane(t *testing.T) {
	t.Helper()
	<-e2eLanes.wait(t.Name())
	t.Cleanup(e2eLanes.release)
}

// laneGate lets free tests run at a time, the best ranked waiting test first. It gives no turn until
// settle has passed since the first test arrived, so that the tests go test releases together are
// all waiting before the first turn is given. It is safe for concurrent use.
type laneGate struct {
	order  []string
	settle time.Duration

	mu      sync.Mutex
	free    int
	opened  bool // settle has passed since the first arrival
	started bool // the first test has arrived
	arrived int
	waiting []laneWaiter
}

type laneWaiter struct {
	rank, arrival int
	turn          chan struct{}
}

func newLaneGate(lanes int, settle time.Duration, order []string) *laneGate {
	return &laneGate{order: order, settle: settle, free: max(lanes, 1)}
}

// rank is name's place in the order: its own entry, or its parent's "NAME/" entry for a subtest.
func (g *laneGate) rank(name string) int {
	for i, o := range g.order {
		if name == o || (strings.HasSuffix(o, "/") && strings.HasPrefix(name, o)) {
			return i
		}
	}
	return len(g.order)
}

// wait queues the test name and returns a channel closed when its turn comes.
func (g *laneGate) wait(name string) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started {
		g.started = true
		time.AfterFunc(g.settle, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.opened = true
			g.grant()
		})
	}
	w := laneWaiter{rank: g.rank(name), arrival: g.arrived, turn: make(chan struct{})}
	g.arrived++
	g.waiting = append(g.waiting, w)
	g.grant()
	return w.turn
}

// release gives a lane back.
func (g *laneGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free++
	g.grant()
}

// grant gives the free lanes to the best ranked waiting tests; g.mu is held.
func (g *laneGate) grant() {
	if !g.opened {
		return
	}
	slices.SortStableFunc(g.waiting, func(a, b laneWaiter) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return a.arrival - b.arrival
	})
	for g.free > 0 && len(g.waiting) > 0 {
		close(g.waiting[0].turn)
		g.waiting = g.waiting[1:]
		g.free--
	}
}

// TestLaneGateLongestFirst checks the gate's order and limit: tests arriving together in any order
// start best ranked first, never more than the lanes at once, and a later arrival of better rank
// goes before those already waiting.
func TestLaneGateLongestFirst(t *testing.T) {
	g := newLaneGate(2, 500*time.Millisecond, []string{"TestLong", "TestGroup/", "TestMid"})
	var mu sync.Mutex
	var started []string
	running, most := 0, 0
	var wg sync.WaitGroup
	run := func(name string, hold chan struct{}) {
		defer wg.Done()
		<-g.wait(name)
		mu.Lock()
		started = append(started, name)
		running++
		most = max(most, running)
		mu.Unlock()
		<-hold
		mu.Lock()
		running--
		mu.Unlock()
		g.release()
	}
	holds := map[string]chan struct{}{}
	// arrive starts the test name and waits until it is queued at the gate, so that arrival order
	// (the tie-break among equal ranks) is the order of the calls.
	arrive := func(name string) {
		t.Helper()
		g.mu.Lock()
		before := g.arrived
		g.mu.Unlock()
		holds[name] = make(chan struct{})
		wg.Add(1)
		go run(name, holds[name])
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			g.mu.Lock()
			queued := g.arrived > before
			g.mu.Unlock()
			if queued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached the gate", name)
			}
		}
	}
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			got := len(started)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d tests started, want %d", got, n)
			}
		}
	}
	for _, name := range []string{"TestShort", "TestMid", "TestOther", "TestLong"} {
		arrive(name)
	}
	waitFor(2)
	// A subtest of the group arrives while the first two run: it ranks before the rest.
	arrive("TestGroup/a")
	// Each test that ends gives its lane to the next in rank; the next one to end waits until
	// that one has started, so the order recorded is the gate's.
	for i, name := range []string{"TestLong", "TestMid", "TestGroup/a", "TestShort", "TestOther"} {
		close(holds[name])
		if n := i + 3; n <= 5 {
			waitFor(n)
		}
	}
	wg.Wait()
	want := []string{"TestLong", "TestMid", "TestGroup/a", "TestShort", "TestOther"}
	if !slices.Equal(started, want) && !slices.Equal(started, []string{"TestMid", "TestLong", "TestGroup/a", "TestShort", "TestOther"}) {
		t.Errorf("started %v, want %v (the first two in either order)", started, want)
	}
	if most > 2 {
		t.Errorf("%d tests ran at once, want at most 2", most)
	}
}

// TestEveryParallelTestTakesALane checks the package's test files: every t.Parallel() is followed
// by takeLane(t), or says why not ("// no lane: ..."), and every top-level test that takes a lane
// is ranked in laneOrder.
func TestEveryParallelTestTakesALane(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(src), "\n")
		test := ""
		for i, l := range lines {
			if m := topLevelTest.FindStringSubmatch(l); m != nil {
				test = m[1]
			}
			if strings.TrimSpace(l) != "t.Parallel()" && !strings.HasPrefix(strings.TrimSpace(l), "t.Parallel() //") {
				continue
			}
			switch {
			case strings.Contains(l, "// no lane:"):
			case i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "takeLane(t)":
				if !slices.ContainsFunc(laneOrder, func(o string) bool { return o == test || o == test+"/" }) {
					t.Errorf("%s:%d: %s takes a lane but laneOrder does not rank it", f, i+1, test)
				}
			default:
				t.Errorf("%s:%d: t.Parallel() without takeLane(t) on the next line", f, i+1)
			}
		}
	}
}

var topLevelTest = regexp.MustCompile(`^func (Test\w+)\(t \*testing\.T\)`)
