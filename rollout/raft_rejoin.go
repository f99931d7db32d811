package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// A node that removes itself while it joins. Vault 1.19 and later (hashicorp/vault#32099) marks a
// joining node removed from the cluster, for good, when its once-a-second check sees a raft
// configuration without it after one with it: the joiner starts from the leader's peer list (itself
// included), then replays the leader's log, whose older configuration entries do not list it yet.
// On a fast machine the replay ends before the check looks; on a slow one (VMs without KVM, a
// loaded host) it often does not. The node then answers sys/health 530 and never serves, while the
// leader still lists it. Nothing in the node's configuration closes that window (a snapshot the
// leader sends was taken before the node was added to the configuration, so it does not list it
// either), so the raft strategy undoes such a join and tries again with a fresh node: it leaves the
// configuration (remove-peer, so the cluster does not count a dead member), its instance is
// destroyed, and a new node with a new ID joins. Each attempt is persisted before its side effects.

// maxRaftJoinAttempts bounds the nodes one join launches: each costs a boot, and a node that keeps
// removing itself is something a person should look at (roll back, or a faster machine).
const maxRaftJoinAttempts = 5

// raftNodeName is the name of a node (launch token, instance name and raft node ID) of a side's
// token, slot and attempt: TOKEN-SLOT, then TOKEN-SLOT-tryN for attempt N-1.
func raftNodeName(token string, slot, attempt int) string {
	if attempt == 0 {
		return fmt.Sprintf("%s-%d", token, slot)
	}
	return fmt.Sprintf("%s-%d-try%d", token, slot, attempt+1)
}

// raftJoined waits until node passes the deploy's checks and autopilot reports it a healthy voter,
// while it asks the node itself whether it removed itself from the cluster: removed reports that
// it did (the waits are cut short then).
func (s *session) raftJoined(ctx context.Context, r *Record, st RaftStep, node compute.Instance) (removed bool, err error) {
	cl, err := s.raftCluster(ctx)
	if err != nil {
		return false, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gone atomic.Bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_, poll := s.raftDeadline()
		for {
			if yes, err := cl.Removed(wctx, s.raftAddr(node)); err == nil && yes {
				gone.Store(true)
				cancel()
				return
			}
			if sleepCtx(wctx, poll) != nil {
				return
			}
		}
	}()
	err = s.raftWaitJoin(wctx, r, st, node)
	cancel()
	<-watched
	if gone.Load() {
		return true, nil
	}
	return false, err
}

// raftWaitJoin waits until node passes the deploy's checks and autopilot reports it a healthy voter.
func (s *session) raftWaitJoin(ctx context.Context, r *Record, st RaftStep, node compute.Instance) error {
	if len(s.checks) > 0 {
		if err := health.Gate(ctx, s.checks, []health.Target{target(node)}, s.observer(r, "health")); err != nil {
			return fmt.Errorf("rollout: role %q: node %s did not pass its checks; rerun to keep waiting, or roll back: %w", r.Role, st.Node, err)
		}
	}
	return s.waitVoter(ctx, r, st.Node, true)
}

// raftRejoin persists the next attempt of st, whose node removed itself: a fresh node ID, the
// removed node among the abandoned ones; raftJoin then removes and destroys those and launches the
// new node. Beyond maxRaftJoinAttempts it stops with an error that names the nodes, the step still
// in flight (a rerun tries the last node again; a rollback removes them all).
func (s *session) raftRejoin(ctx context.Context, r *Record, st *RaftStep, side raftSide, node compute.Instance) error {
	if st.Attempt+1 >= maxRaftJoinAttempts {
		return fmt.Errorf("rollout: role %q: node %s (%s) removed itself from the cluster while joining (Vault's hashicorp/vault#32099: the host is too slow for its removed-node check), as did %d node(s) before it (%s); roll back (drover rollout rollback %s), or rerun on a less loaded host",
			r.Role, st.Node, node.ID, st.Attempt, orNone(st.Abandoned), r.Role)
	}
	next := *st
	next.Attempt++
	next.Abandoned = append(slices.Clone(st.Abandoned), st.Node)
	next.Node, next.Instance = raftNodeName(side.token, st.Slot, next.Attempt), ""
	note := fmt.Sprintf("node %s (%s) removed itself from the cluster while joining (hashicorp/vault#32099); it leaves the raft configuration and is destroyed, and node %s joins instead (attempt %d of at most %d)",
		st.Node, node.ID, next.Node, next.Attempt+1, maxRaftJoinAttempts)
	if err := s.saveRaft(ctx, r, "rejoin", note, func(p *RaftProgress) { p.Step = &next }); err != nil {
		return err
	}
	*st = next
	return nil
}

// raftAbandon removes the nodes ids from the raft configuration, asking another member, and
// destroys their instances (credentials revoked). Both are idempotent: a node that is not a member
// is skipped by remove-peer, an instance already gone is not listed.
func (s *session) raftAbandon(ctx context.Context, r *Record, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	members, err := s.raftMembers(ctx, r)
	if err != nil {
		return err
	}
	cl, err := s.raftCluster(ctx)
	if err != nil {
		return err
	}
	var gone, others []compute.Instance
	for _, in := range members {
		if !slices.Contains(ids, in.Labels[LabelRaftNode]) {
			others = append(others, in)
		}
	}
	for _, id := range ids {
		servers, via, err := s.raftServers(ctx, others, "")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(servers, func(sv RaftServer) bool { return sv.ID == id }) {
			if err := cl.RemovePeer(ctx, s.raftAddr(via), id); err != nil {
				return fmt.Errorf("rollout: role %q: removing node %s, which removed itself, from the raft configuration (asked of %s): %w", r.Role, id, via.ID, err)
			}
			s.step(r.ID, "rejoin", fmt.Sprintf("node %s left the raft configuration", id))
		}
		for _, in := range members {
			if in.Labels[LabelRaftNode] == id {
				gone = append(gone, in)
			}
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := terminateAll(ctx, s.comp, gone, s.c.revokeCredential); err != nil {
		return fmt.Errorf("rollout: role %q: destroying node(s) %s, which removed themselves: %w", r.Role, strings.Join(ids, ", "), err)
	}
	s.step(r.ID, "rejoin", fmt.Sprintf("destroyed %s", strings.Join(ids, ", ")))
	return nil
}
