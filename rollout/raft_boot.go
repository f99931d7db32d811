package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// raftBootstrap boots a new cluster in booting: node 0 first, which initializes the cluster; once
// it passed the deploy's checks (persisted: Seeded), the other nodes side by side, each told node
// 0's API address to join. Launch by token makes both halves idempotent. Without a token on the new
// cluster (it does not exist before), drover does not ask autopilot here: the checks of the next
// state (vault: initialized and unsealed, active or standby) show each node joined and unsealed.
func (s *session) raftBootstrap(ctx context.Context, r *Record) error {
	rp := r.Progress.Raft
	side := raftSide{rollout: r.ID, image: r.Image, token: r.ID}
	if !rp.Seeded {
		first, err := s.launchNode(ctx, r, side, 0, raftNodeName(side.token, 0, 0), "")
		if err != nil {
			return err
		}
		if first, err = s.waitNode(ctx, r, first.ID); err != nil {
			return s.fail(ctx, r, health.NewFailure("boot", target(first), err.Error(), "died"))
		}
		if len(s.checks) > 0 {
			err := health.Gate(ctx, s.checks, []health.Target{target(first)}, s.observer(r, "health"))
			var f *health.Failure
			if errors.As(err, &f) {
				return s.fail(ctx, r, f)
			}
			if err != nil {
				return err
			}
		}
		if err := s.saveRaft(ctx, r, "seed", fmt.Sprintf("node 0 (%s) started the cluster and passed its checks", first.ID), func(p *RaftProgress) {
			p.Seeded = true
		}); err != nil {
			return err
		}
	}
	nodes, err := s.nodesOf(ctx, r, r.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(in compute.Instance) bool { return slotOf(in) == 0 })
	if i < 0 {
		return s.fail(ctx, r, health.NewFailure("boot", health.Target{Name: r.ID}, "node 0 is gone", "the cluster's first node was destroyed"))
	}
	join := s.raftAPI(nodes[i])
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for slot := 1; slot < rp.Nodes; slot++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.launchNode(ctx, r, side, slot, raftNodeName(side.token, slot, 0), join)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ins, f, err := s.waitRunning(ctx, r)
	if err != nil {
		return err
	}
	if f != nil {
		return s.fail(ctx, r, f)
	}
	note := "node 0 running: it starts the cluster"
	if rp.Nodes > 1 {
		note = fmt.Sprintf("%d node(s) running; nodes 1-%d join node 0 at %s", len(ins), rp.Nodes-1, join)
	}
	return s.move(ctx, r, Checking, note, func(n *Record) { n.Green = refs(ins) })
}

// raftPrecheck asks the serving cluster, before anything changes, that every member is a healthy
// voter and that each serving node is one of them: a replacement starts only from a healthy
// cluster, since it takes one member out at a time. It waits up to the deploy's deadline: nodes
// that just joined are non-voters until autopilot's stabilization time (10 s by default) passes.
func (s *session) raftPrecheck(ctx context.Context, r *Record) error {
	old, err := s.nodesOf(ctx, r, r.Previous)
	if err != nil {
		return err
	}
	if len(old) == 0 {
		return fmt.Errorf("rollout: role %q: rollout %s, which serves, has no running node: nothing to join; abort this rollout", r.Role, r.Previous)
	}
	deadline, poll := s.raftDeadline()
	end := time.Now().Add(deadline)
	for {
		servers, via, err := s.raftServers(ctx, old, "")
		if err != nil {
			return err
		}
		bad, leader := unhealthy(old, servers)
		if len(bad) == 0 {
			return s.move(ctx, r, Ready, fmt.Sprintf("autopilot (asked of %s): %d healthy voter(s), leader %s", via.ID, len(servers), leader), nil)
		}
		if time.Now().After(end) {
			return fmt.Errorf("rollout: role %q: the cluster is not healthy after %s, so no member may leave it: %s; rerun once autopilot reports every member a healthy voter, or abort", r.Role, deadline, strings.Join(bad, "; "))
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return err
		}
	}
}

// unhealthy lists what keeps the cluster from being replaced: members that are not healthy voters,
// serving nodes that are not members; and names the leader.
func unhealthy(nodes []compute.Instance, servers []RaftServer) (bad []string, leader string) {
	leader = "(none)"
	for _, sv := range servers {
		if !sv.Healthy || !sv.Voter {
			bad = append(bad, fmt.Sprintf("%s (healthy %t, voter %t)", sv.ID, sv.Healthy, sv.Voter))
		}
		if sv.Leader {
			leader = sv.ID
		}
	}
	for _, in := range nodes {
		id := in.Labels[LabelRaftNode]
		if id == "" || !slices.ContainsFunc(servers, func(sv RaftServer) bool { return sv.ID == id }) {
			bad = append(bad, fmt.Sprintf("node %s (%s) is not in the raft configuration", in.Name, in.ID))
		}
	}
	return bad, leader
}
