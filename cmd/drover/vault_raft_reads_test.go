//go:build e2e && lab

package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/compute"
)

// The clients of TestE2EVaultRaft: a reader of the secret through the role's address every
// 100 ms, and a watcher of the cluster's leader.

type read struct {
	at time.Time
	ok bool
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
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
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
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			r.mu.Lock()
			r.reads = append(r.reads, read{time.Now(), ok})
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

type outage struct{ start, end time.Time }

func (o outage) String() string {
	return fmt.Sprintf("%s+%s", o.start.Format("15:04:05.000"), o.end.Sub(o.start).Round(time.Millisecond))
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
	in := false
	for _, r := range reads[first:] {
		switch {
		case !r.ok && !in:
			in = true
		case r.ok && in:
			out = append(out, outage{last, r.at})
			in = false
		}
		if r.ok {
			last = r.at
		}
	}
	if in {
		out = append(out, outage{last, reads[len(reads)-1].at})
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

type leaderWatch struct {
	stopc, done chan struct{}
	changes     int
	at          []time.Time // when each change was seen
}

// instanceLister is where watchLeader finds the nodes: raftProcs, or the lab.
type instanceLister interface {
	Instances(context.Context, compute.Selector) ([]compute.Instance, error)
}

// watchLeader asks the running nodes who leads every 200 ms and counts the changes.
func watchLeader(t *testing.T, procs instanceLister, token string) *leaderWatch {
	w := &leaderWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := ""
		for {
			select {
			case <-w.stopc:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ins, _ := procs.Instances(context.Background(), nil)
			for _, in := range ins {
				if in.State != compute.Running {
					continue
				}
				c, err := api.NewClient(&api.Config{Address: "http://" + in.Endpoint(8200).String(), Timeout: time.Second})
				if err != nil {
					continue
				}
				c.SetToken(token)
				l, err := c.Sys().Leader()
				if err != nil || l.LeaderAddress == "" {
					continue
				}
				if last != "" && l.LeaderAddress != last {
					w.changes++
					w.at = append(w.at, time.Now())
				}
				last = l.LeaderAddress
				break
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *leaderWatch) stop() int {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	return w.changes
}
