package rollout

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// raft is the strategy of a role whose instances form a raft cluster (a Vault server with
// integrated storage, examples/homelab/vault). It walks the same states as bluegreen:
//
//	planned -> booting -> checking -> ready -> cutting-over -> draining -> promoted -> retired
//
// First deploy (nothing serves the role): booting launches node 0, which initializes the cluster
// and unseals through its seal, waits for its checks, then launches the other nodes side by side,
// each told in its user-data the API address of node 0 to join (Options.RaftNode). The rest is
// bluegreen's first deploy: every node checked, the cutover pointed at all of them, the watch.
//
// Replacement (a cluster serves): booting launches nothing; checking asks the cluster (through
// Options.Raft, autopilot's state) that it is healthy; promote then replaces the cluster in
// cutting-over, one persisted node step at a time (raft_nodes.go): one new node joins and becomes a
// healthy voter, one old node leaves the raft configuration (remove-peer) and is destroyed, the
// old leader last, so the cluster never has fewer than count healthy voters but for the one being
// removed: quorum is never lost. The cutover follows the healthy voters at every step. Abort
// refuses once cutting-over (use rollback); rollback walks the same steps back: nodes of the
// previous image join, the new ones leave, then the rollout ends rolled-back with the previous
// rollout serving again. No old node is kept after the replacement (they left the cluster), so
// keep_old does not apply.
type raft struct{ bluegreen }

// RaftProgress is the raft strategy's part of a rollout record.
type RaftProgress struct {
	// Bootstrap is set when the rollout starts a new cluster: nothing served the role before, so
	// its first node initializes itself instead of joining.
	Bootstrap bool `json:"bootstrap"`
	// Nodes is how many nodes the rollout deploys.
	Nodes int `json:"nodes"`
	// Seeded is set once a bootstrap's first node passed its checks: the others may join it.
	Seeded bool `json:"seeded,omitempty"`
	// Reverse is set when a rollback walks the replacement back: nodes of the previous image join,
	// this rollout's leave.
	Reverse bool `json:"reverse,omitempty"`
	// Failure is why the rollout walks back by itself (the watch failed); "" when asked to.
	Failure string `json:"failure,omitempty"`
	// Step is the node step in flight, persisted before its side effects; nil between steps.
	Step *RaftStep `json:"step,omitempty"`
	// Done are the node steps finished, in order.
	Done []RaftStep `json:"done,omitempty"`
}

// RaftStep is one node joining or leaving the cluster.
type RaftStep struct {
	Action string `json:"action"` // join or remove
	Node   string `json:"node"`   // the raft node ID: the instance's name
	// Rollout is the rollout the node belongs to (its instance's rollout label).
	Rollout string `json:"rollout"`
	Slot    int    `json:"slot"`
	// Instance is the instance's ID, once launched (join) or known (remove).
	Instance string `json:"instance,omitempty"`
	// Attempt counts the earlier nodes of this join that removed themselves from the cluster
	// (raft_rejoin.go): 0 for the first; Node is then named after it.
	Attempt int `json:"attempt,omitempty"`
	// Abandoned are the node IDs of those earlier attempts: each leaves the raft configuration and
	// its instance is destroyed before this attempt launches (and again by a rerun: both are
	// idempotent).
	Abandoned []string `json:"abandoned,omitempty"`
}

// RaftCluster is what the raft strategy asks of a running cluster; cmd/ implements it with Vault's
// API (sys/storage/raft/autopilot/state, sys/storage/raft/remove-peer) and a token on that cluster.
// Every call goes to one node, which answers for the cluster (a standby forwards to the leader).
// Implementations are safe for concurrent use.
type RaftCluster interface {
	// Servers returns the cluster's members as autopilot reports them.
	Servers(ctx context.Context, node netip.AddrPort) ([]RaftServer, error)
	// RemovePeer removes the server whose node ID is id from the raft configuration. Removing one
	// that is not a member is nil.
	RemovePeer(ctx context.Context, node netip.AddrPort, id string) error
	// Removed reports that the server at node answers, of itself, that it was removed from the
	// cluster for good (Vault: sys/health 530, removed_from_cluster). It asks that node only and
	// needs no token; any other answer, or none, is false.
	Removed(ctx context.Context, node netip.AddrPort) (bool, error)
}

// RaftServer is one member of a raft cluster as autopilot reports it.
type RaftServer struct {
	ID      string // the raft node ID (drover names it after the instance)
	Address string // its cluster address, for people
	Leader  bool
	Voter   bool // a voter; the leader is one
	Healthy bool
}

// LabelRaftNode is the label that names a raft node's ID on its instance.
const LabelRaftNode = "raft-node"

func (raft) Name() string { return "raft" }

// maxRaftNodes is the largest cluster the strategy deploys: Vault recommends 3 or 5 voters, and
// beyond 7 every write waits for more acknowledgements without surviving more failures that matter.
const maxRaftNodes = 7

// Validate refuses a count a raft cluster cannot keep quorum with.
func (raft) Validate(role *fleet.Role) []fleet.Refusal {
	if why := raftCount(role.Deploy); why != "" {
		return []fleet.Refusal{{Attribute: "count", Summary: "Strategy cannot deploy this count", Detail: strings.ToUpper(why[:1]) + why[1:] + "."}}
	}
	return nil
}

// Admit starts a new cluster when nothing serves, or a replacement of the serving one.
func (raft) Admit(dep *fleet.Deploy, serving *Record) (Progress, error) {
	if why := raftCount(dep); why != "" {
		return Progress{}, fmt.Errorf("%s", why)
	}
	n := max(dep.Count, 1)
	return Progress{Raft: &RaftProgress{Bootstrap: serving == nil, Nodes: n}}, nil
}

// raftCount says why dep's count cannot be deployed, or "".
func raftCount(dep *fleet.Deploy) string {
	n := max(dep.Count, 1)
	switch {
	case n > maxRaftNodes:
		return fmt.Sprintf("strategy \"raft\" deploys at most %d nodes (count = %d): set count = 3 or 5", maxRaftNodes, n)
	case n%2 == 0:
		return fmt.Sprintf("strategy \"raft\" needs an odd number of nodes (count = %d): %d nodes survive no more failures than %d, and a split in two halves has no quorum; set count = %d", n, n, n-1, n+1)
	}
	return ""
}

func (raft) Plan(p *planner) {
	n := max(p.dep.Count, 1)
	if p.live == nil {
		p.add("boot", p.done(Booting), "boot node 0 of image %s on compute %q: it initializes the cluster and unseals through its seal", p.img.Short, p.dep.Compute)
		if n > 1 {
			p.add("join", p.done(Booting), "then boot the other %d node(s) side by side; each joins node 0 (its API address in the user-data)", n-1)
		}
		p.add("health", p.done(Checking), "check each node with the deploy's checks")
		p.add("promote", false, "promote with: drover rollout promote %s (or auto_promote)", p.role)
		p.add("cutover", p.done(CuttingOver), "%s", p.cut.Step)
		p.add("watch", p.done(Draining), "watch %s; a failure fails the rollout (first deploy)", max(p.dep.Watch, p.dep.Cutover.Drain))
		return
	}
	old := len(p.live.Green)
	p.add("check", p.done(Checking), "ask the cluster (autopilot, on a serving node) that every member is a healthy voter")
	p.add("promote", false, "promote with: drover rollout promote %s (or auto_promote)", p.role)
	p.add("replace", p.done(CuttingOver), "replace the %d node(s) of rollout %s one at a time with %d of image %s: boot one, wait until autopilot reports it a healthy voter, remove one old node from the raft configuration and destroy it; the old leader last; %s at every step",
		old, p.live.ID, n, p.img.Short, strings.TrimSuffix(p.cut.Step, "."))
	p.add("watch", p.done(Draining), "watch %s; a failure walks the replacement back", max(p.dep.Watch, p.dep.Cutover.Drain))
	p.add("keep", false, "no old node is kept: each left the cluster")
}

// Advance drives a raft rollout: the first deploy boots its nodes in booting, a replacement swaps
// them in cutting-over; both go through bluegreen's checks, cutover and watch otherwise.
func (st raft) Advance(ctx context.Context, s *session, r *Record, goal State) (bool, error) {
	rp := r.Progress.Raft
	if rp == nil {
		return st.bluegreen.Advance(ctx, s, r, goal) // a record of the first-node raft: nothing of its own
	}
	if rp.Reverse && !r.State.Terminal() {
		return false, s.raftReverse(ctx, r)
	}
	if r.State.Terminal() || r.State.rank() >= goal.rank() {
		if r.State == Promoted && !rp.Bootstrap {
			return true, s.raftRetire(ctx, r)
		}
		return st.bluegreen.Advance(ctx, s, r, goal)
	}
	switch {
	case r.State == Booting && rp.Bootstrap:
		return false, s.raftBootstrap(ctx, r)
	case r.State == Booting:
		return false, s.move(ctx, r, Checking, fmt.Sprintf("a replacement boots its nodes one at a time at the cutover: the %d node(s) of rollout %s serve until then", len(r.Blue), r.Previous), nil)
	case r.State == Checking && !rp.Bootstrap:
		return false, s.raftPrecheck(ctx, r)
	case r.State == Ready && !rp.Bootstrap:
		return false, s.move(ctx, r, CuttingOver, fmt.Sprintf("replacing the cluster one node at a time; %s follows the healthy voters", s.cut.Target()), func(n *Record) {
			n.Cutover.Type, n.Cutover.Target = s.cut.Type(), s.cut.Target()
		})
	case r.State == CuttingOver && !rp.Bootstrap:
		return false, s.raftReplace(ctx, r)
	case r.State == Draining && !rp.Bootstrap:
		return false, s.raftWatch(ctx, r)
	}
	return st.bluegreen.Advance(ctx, s, r, goal)
}

// Rollback of a first deploy is bluegreen's (abort, or fail: there is no cluster to go back to).
// A replacement is walked back: before any node joined, an abort; after, node steps in reverse.
func (st raft) Rollback(ctx context.Context, s *session, r *Record) error {
	rp := r.Progress.Raft
	if rp == nil || rp.Bootstrap {
		return st.bluegreen.Rollback(ctx, s, r)
	}
	if !r.State.CutOver() {
		return s.abort(ctx, r, "rolled back before any node was replaced")
	}
	if r.PreviousImage == nil {
		return fmt.Errorf("rollout: role %q: rollout %s names no previous image to walk back to", r.Role, r.ID)
	}
	if !rp.Reverse {
		if err := s.saveRaft(ctx, r, "rollback", fmt.Sprintf("walking the replacement back: nodes of image %s join, those of %s leave, one at a time", r.PreviousImage.Short, r.Image.Short), func(p *RaftProgress) {
			p.Reverse = true
			if p.Step != nil && p.Step.Action == "join" {
				// The node that was joining (it may never manage to) leaves instead: a removal
				// of a server that is not a member is nothing, and its instance is destroyed.
				p.Step.Action = "remove"
			}
		}); err != nil {
			return err
		}
	}
	_, err := s.drive(ctx, r, Retired)
	return err
}
