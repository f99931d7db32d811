//go:build e2e && lab

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// holderPoll asks every lab VM's QMP which volumes it has (query-block), every 200 ms, and keeps
// the most VMs that had one volume at once.
type holderPoll struct {
	mu     sync.Mutex
	polls  int
	most   int
	seenAt string
	cancel context.CancelFunc
	done   chan struct{}
}

func startHolderPoll(t *testing.T, lab *qemu.Provider, state string) *holderPoll {
	ctx, cancel := context.WithCancel(context.Background())
	h := &holderPoll{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for ctx.Err() == nil {
			count := map[string][]string{}
			for id := range labVMs(t, state) {
				qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := qemu.DialMonitor(qctx, id, lab.MonitorPath(id))
				if err == nil {
					vols, _ := m.VolumeBlocks(qctx)
					for _, v := range vols {
						count[v] = append(count[v], id)
					}
					m.Close()
				}
				qcancel()
			}
			h.mu.Lock()
			h.polls++
			for v, vms := range count {
				if len(vms) > h.most {
					h.most, h.seenAt = len(vms), fmt.Sprintf("volume %s in %v at %s", v, vms, time.Now().Format(time.RFC3339Nano))
				}
			}
			h.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *holderPoll) atMostOne(t *testing.T, where string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.most > 1 {
		t.Fatalf("%s: QMP showed %s", where, h.seenAt)
	}
}

func (h *holderPoll) stop() (polls, most int) {
	h.cancel()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.polls, h.most
}

// moveFigures is what a client and the events saw of one move of the volume.
type moveFigures struct {
	unavailable time.Duration // the old holder's last answer to the new one's first
	parts       []string      // each part of the move and how long it took
	wall        time.Duration // the drover command
	// before is what happened before the old holder was stopped (the new holder's start and boot,
	// while the old one served); beyondStart is unavailable less the new holder's PostgreSQL start
	// (its mount to its first answer): the goal is at most 5 s.
	before, beyondStart time.Duration
	// lastFrom is the old holder's last answer; started, booted and stopped are the events of the
	// new holder's start, of drover-boot seen waiting on it, and of the old holder's stop.
	lastFrom, started, booted, stopped time.Time
}

func (m moveFigures) String() string {
	return fmt.Sprintf("unavailable %s, of which %s beyond PostgreSQL's own start (%s); before the old holder stopped: %s; drover ran %s",
		m.unavailable.Round(time.Millisecond), m.beyondStart.Round(time.Millisecond), strings.Join(m.parts, ", "), m.before.Round(time.Millisecond), m.wall.Round(time.Millisecond))
}

// measureMove runs drover rollout CMD db while a loop queries from and to every 100 ms and to's
// console is watched for drover-boot's mount, and returns the figures. The command must succeed.
func measureMove(t *testing.T, fleetFile string, env []string, cmd string, from, to compute.Instance) moveFigures {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu               sync.Mutex
		lastFrom         time.Time
		firstTo, mounted time.Time
		wg               sync.WaitGroup
	)
	offset := int64(0)
	if st, err := os.Stat(to.Console); err == nil {
		offset = st.Size()
	}
	wg.Add(3)
	for _, in := range []compute.Instance{from, to} {
		go func() { // the query loop: one client per instance, each query within 5 s (TCG is slow to fork a backend)
			defer wg.Done()
			for ctx.Err() == nil {
				qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := pgQuery(qctx, in.Endpoint(5432).String(), "SELECT count(*) FROM kept")
				qcancel()
				now := time.Now()
				mu.Lock()
				switch {
				case err != nil:
				case in.ID == from.ID && firstTo.IsZero():
					lastFrom = now
				case in.ID == to.ID && firstTo.IsZero():
					firstTo = now
				}
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	go func() { // drover-boot's mount on to's console
		defer wg.Done()
		for ctx.Err() == nil {
			b, _ := os.ReadFile(to.Console)
			if int64(len(b)) < offset {
				offset = 0 // a restarted VM's console starts again
			}
			if strings.Contains(string(b[offset:]), "drover-boot: volume pgdata: ") && strings.Contains(string(b[offset:]), " mounted on ") {
				mu.Lock()
				mounted = time.Now()
				mu.Unlock()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	// The move starts once the loop has had an answer from the old holder.
	for end := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		ok := !lastFrom.IsZero()
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(end) {
			cancel()
			wg.Wait()
			t.Fatalf("rollout %s: %s did not answer the query loop within a minute", cmd, from.ID)
		}
	}
	s := droverStream(t, env, "--fleet", fleetFile, "rollout", cmd, "db")
	var events []rollout.Event
	for e := range s.events {
		events = append(events, e)
	}
	r := <-s.done
	if r.code != 0 {
		cancel()
		wg.Wait()
		t.Fatalf("drover rollout %s db: exit %d\n%s", cmd, r.code, tail(r.stderr, 40))
	}
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		ok := !firstTo.IsZero()
		mu.Unlock()
		if ok {
			break
		}
	}
	cancel()
	wg.Wait()
	if firstTo.IsZero() || lastFrom.IsZero() {
		t.Fatalf("rollout %s: the query loop saw the old holder last at %v and the new one first at %v", cmd, lastFrom, firstTo)
	}
	m := moveFigures{unavailable: firstTo.Sub(lastFrom), wall: r.elapsed, lastFrom: lastFrom}
	if !mounted.IsZero() {
		m.beyondStart = m.unavailable - firstTo.Sub(mounted)
	}
	var began time.Time
	prev, prevName := time.Time{}, ""
	mark := func(name string, at time.Time) {
		if at.IsZero() {
			return
		}
		if !prev.IsZero() {
			m.parts = append(m.parts, fmt.Sprintf("%s %s", name, at.Sub(prev).Round(time.Millisecond)))
		}
		prev, prevName = at, name
	}
	for _, e := range events {
		switch {
		case e.Kind == "transition" && (e.State == rollout.CuttingOver || e.State == rollout.RolledBack):
			mark("", e.Time)
			began = e.Time
		case e.Step == "handoff" && strings.HasPrefix(e.Message, "user-data of "):
			mark("user-data with a fresh credential", e.Time)
		case e.Step == "handoff" && strings.Contains(e.Message, " booted: drover-boot waits"):
			mark("boot to drover-boot waiting (the old holder still serves)", e.Time)
			m.booted = e.Time
		case e.Step == "handoff" && strings.HasPrefix(e.Message, "stopped "):
			if !began.IsZero() {
				m.before = e.Time.Sub(began)
			}
			m.stopped = e.Time
			mark("stop", e.Time)
		case e.Step == "handoff" && strings.Contains(e.Message, " detached from "):
			mark("detach", e.Time)
		case e.Step == "handoff" && strings.HasPrefix(e.Message, "snapshot of "):
			mark("snapshot", e.Time)
		case e.Step == "handoff" && strings.HasPrefix(e.Message, "started "):
			m.started = e.Time
			mark("start (qemu up)", e.Time)
		case e.Step == "handoff" && strings.Contains(e.Message, " attached to "):
			mark("attach", e.Time)
		}
	}
	mark("mount (device seen, fsck, mount, as drover-boot reports)", mounted)
	mark("PostgreSQL start and first answer", firstTo)
	_ = prevName
	return m
}
