//go:build e2e && lab

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/compute"
)

// The clients of TestE2EVaultRaft: a reader of the secret through the role's address every
// 100 ms, and a watcher of the cluster's leader.

type read struct {
	at   time.Time
	ok   bool
	why  string        // a failed read's reason: "timeout", "503", "connection refused", ...
	took time.Duration // from the request to the answer (or the failure)
}

type reader struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	reads []read
}

// startReader reads url with token every 100 ms, a new connection each time, until stop.
func startReader(t *testing.T, url, token string) *reader {
	r := &reader{stopc: make(chan struct{}), done: make(chan struct{})}
	// A read slower than the timeout fails; below it, a slow answer is latency, reported apart
	// (slowest), not an outage: TCG VMs on a loaded host answer in seconds at times.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stopc:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("X-Vault-Token", token)
			sent := time.Now()
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			why := ""
			switch {
			case err != nil:
				why = failReason(err)
			case !ok:
				why = strconv.Itoa(resp.StatusCode)
			}
			if resp != nil {
				resp.Body.Close()
			}
			r.mu.Lock()
			r.reads = append(r.reads, read{time.Now(), ok, why, time.Since(sent)})
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *reader) stop() []read {
	select {
	case <-r.stopc:
	default:
		close(r.stopc)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reads)
}

type outage struct {
	start, end time.Time
	why        string // the first failed read's reason
}

func (o outage) String() string {
	return fmt.Sprintf("%s+%s (%s)", o.start.Format("15:04:05.000"), o.end.Sub(o.start).Round(time.Millisecond), o.why)
}

// failReason names why a read failed in a word or two.
func failReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return err.Error()
}

// slowest is the longest a successful read took.
func slowest(reads []read) time.Duration {
	var d time.Duration
	for _, r := range reads {
		if r.ok {
			d = max(d, r.took)
		}
	}
	return d
}

// reasons counts the failed reads after the first success by reason.
func reasons(reads []read) map[string]int {
	out := map[string]int{}
	first := slices.IndexFunc(reads, func(r read) bool { return r.ok })
	for _, r := range reads[max(first, 0):] {
		if !r.ok {
			out[r.why]++
		}
	}
	return out
}

// outagesOf groups the failed reads after the first success into outages, each from the last
// success before it to the first success after it.
func outagesOf(reads []read) []outage {
	var out []outage
	first := slices.IndexFunc(reads, func(r read) bool { return r.ok })
	if first < 0 {
		return []outage{{}}
	}
	last := reads[first].at
	in, why := false, ""
	for _, r := range reads[first:] {
		switch {
		case !r.ok && !in:
			in, why = true, r.why
		case r.ok && in:
			out = append(out, outage{last, r.at, why})
			in = false
		}
		if r.ok {
			last = r.at
		}
	}
	if in {
		out = append(out, outage{last, reads[len(reads)-1].at, why})
	}
	return out
}

func failedAfterFirst(reads []read) int {
	first := slices.IndexFunc(reads, func(r read) bool { return r.ok })
	n := 0
	for _, r := range reads[max(first, 0):] {
		if !r.ok {
			n++
		}
	}
	return n
}

// election is a change of leader as the cluster saw it: from the last poll at which every running
// node named from to the first at which every one named to. It includes the time the standbys took
// to learn of the new leader, in which they still forward requests to the old one.
type election struct {
	start, end time.Time
	from, to   string
}

func (e election) String() string {
	return fmt.Sprintf("%s+%s (%s -> %s)", e.start.Format("15:04:05.000"), e.end.Sub(e.start).Round(time.Millisecond), e.from, e.to)
}

// overlaps reports whether o falls, at least in part, within e.
func (e election) overlaps(o outage) bool { return o.start.Before(e.end) && e.start.Before(o.end) }

type leaderWatch struct {
	stopc, done chan struct{}
	elections   []election
}

// instanceLister is where watchLeader finds the nodes: raftProcs, or the lab.
type instanceLister interface {
	Instances(context.Context, compute.Selector) ([]compute.Instance, error)
}

// watchLeader asks every running node who leads, every 200 ms, and records each election. The
// cluster agrees when every node that ever named a leader names one, and all name the same; a node
// that has not named one yet (it is joining) does not count.
func watchLeader(t *testing.T, procs instanceLister, token string) *leaderWatch {
	w := &leaderWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		settled := ""              // the leader the nodes last agreed on
		var agreedAt time.Time     // the last poll at which they agreed on it
		named := map[string]bool{} // nodes that have named a leader
		for {
			select {
			case <-w.stopc:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ins, _ := procs.Instances(context.Background(), nil)
			leaders := map[string]bool{}
			lost := false
			for _, in := range ins {
				if in.State != compute.Running {
					continue
				}
				addr := leaderSeenBy(in, token)
				if addr == "" {
					lost = lost || named[in.ID]
					continue
				}
				named[in.ID], leaders[addr] = true, true
			}
			if len(leaders) != 1 || lost {
				continue
			}
			now := time.Now()
			for agreed := range leaders {
				if settled != "" && agreed != settled {
					w.elections = append(w.elections, election{agreedAt, now, settled, agreed})
				}
				settled, agreedAt = agreed, now
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// leaderSeenBy is the leader that node in names, or "" if it names none or does not answer.
func leaderSeenBy(in compute.Instance, token string) string {
	c, err := api.NewClient(&api.Config{Address: "http://" + in.Endpoint(8200).String(), Timeout: time.Second})
	if err != nil {
		return ""
	}
	c.SetToken(token)
	l, err := c.Sys().Leader()
	if err != nil {
		return ""
	}
	return l.LeaderAddress
}

func (w *leaderWatch) stop() []election {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	return w.elections
}
