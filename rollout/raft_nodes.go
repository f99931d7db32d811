package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// The node steps of the raft strategy. Each is persisted (RaftProgress.Step) before its side
// effects, and every side effect is idempotent: launch by token, remove-peer of a server that left,
// terminate of a gone instance. A command killed at any point resumes the step in flight.

// raftSide is one side of a replacement: the rollout whose nodes join, or whose nodes leave.
type raftSide struct {
	rollout string // the nodes' rollout label
	image   Image
	token   string // launch tokens: TOKEN-SLOT
}

// raftSides returns which nodes join and which leave: the rollout's own join and the previous
// rollout's leave; walking back, nodes of the previous image join (labeled with the previous
// rollout, which serves again afterwards) and the rollout's own leave.
func raftSides(r *Record) (in, out raftSide) {
	fwd := raftSide{rollout: r.ID, image: r.Image, token: r.ID}
	back := raftSide{rollout: r.Previous, token: r.ID + "-back"}
	if r.PreviousImage != nil {
		back.image = *r.PreviousImage
	}
	if r.Progress.Raft.Reverse {
		return back, fwd
	}
	return fwd, back
}

// raftReplace does the next node step of a replacement; once the cluster is the new nodes only,
// it moves to draining.
func (s *session) raftReplace(ctx context.Context, r *Record) error {
	in, out := raftSides(r)
	done, err := s.raftStep(ctx, r, in, out)
	if err != nil || !done {
		return err
	}
	nodes, err := s.nodesOf(ctx, r, in.rollout)
	if err != nil {
		return err
	}
	cur, _ := s.cut.Current(ctx)
	return s.move(ctx, r, Draining, fmt.Sprintf("the cluster is the %d node(s) of image %s; %s at %s", len(nodes), r.Image.Short, s.cut.Target(), orNone(cur)), func(n *Record) {
		n.Green, n.Cutover.After = refs(nodes), cur
	})
}

// raftReverse does the next node step of a rollback; once the cluster is the previous image's
// nodes only, the rollout ends rolled-back and the previous rollout serves again.
func (s *session) raftReverse(ctx context.Context, r *Record) error {
	in, out := raftSides(r)
	done, err := s.raftStep(ctx, r, in, out)
	if err != nil || !done {
		return err
	}
	start := time.Now()
	if err := s.move(ctx, r, RolledBack, fmt.Sprintf("walked back: the cluster is the nodes of image %s again (rollout %s)", in.image.Short, in.rollout), nil); err != nil {
		return err
	}
	if err := s.cleanup(ctx); err != nil {
		return err
	}
	s.step(r.ID, "rollback", fmt.Sprintf("rollout %s serves again; cleaned up in %s", in.rollout, human(time.Since(start))))
	if why := r.Progress.Raft.Failure; why != "" {
		return &endError{fmt.Errorf("rollout: role %q: rollout %s failed its post-cutover watch and was walked back to rollout %s: %s", r.Role, r.ID, in.rollout, why)}
	}
	return nil
}

// raftWatch runs the deploy's checks on the new cluster for the watch window, then promotes. A
// failure walks the replacement back (Reverse): bluegreen's answer, destroying green, would destroy
// the cluster, whose old nodes have left it.
func (s *session) raftWatch(ctx context.Context, r *Record) error {
	window := max(time.Duration(r.Watch), s.dep.Cutover.Drain)
	if since := s.c.now().Sub(r.At(Draining)); since > 0 {
		window -= since
	}
	targets := s.cut.WatchTargets()
	if targets == nil {
		ins, err := s.nodesOf(ctx, r, r.ID)
		if err != nil {
			return err
		}
		for _, in := range ins {
			targets = append(targets, target(in))
		}
	}
	err := s.watchFor(ctx, r, targets, window, "target(s)")
	var f *health.Failure
	if errors.As(err, &f) {
		return s.saveRaft(ctx, r, "rollback", fmt.Sprintf("watch failed (%v): walking the replacement back one node at a time", f), func(p *RaftProgress) {
			p.Reverse, p.Failure = true, f.Error()
		})
	}
	if err != nil {
		return err
	}
	return s.move(ctx, r, Promoted, "watch passed", func(n *Record) { n.KeepUntil = s.c.now() })
}

// raftRetire ends a promoted replacement: nothing of the old cluster is left to keep.
func (s *session) raftRetire(ctx context.Context, r *Record) error {
	if err := s.move(ctx, r, Retired, "the old nodes left the cluster one at a time: nothing to keep", nil); err != nil {
		return err
	}
	return s.cleanup(ctx)
}

// raftStep finishes the step in flight, or persists the next one and does it. done reports that
// no step is left: count nodes of in, none of out.
func (s *session) raftStep(ctx context.Context, r *Record, in, out raftSide) (done bool, err error) {
	rp := r.Progress.Raft
	if rp.Step != nil {
		return false, s.raftDo(ctx, r, *rp.Step)
	}
	inNodes, err := s.nodesOf(ctx, r, in.rollout)
	if err != nil {
		return false, err
	}
	outNodes, err := s.nodesOf(ctx, r, out.rollout)
	if err != nil {
		return false, err
	}
	var next RaftStep
	switch {
	case len(inNodes) < rp.Nodes && len(inNodes)+len(outNodes) <= rp.Nodes:
		slot := freeSlot(inNodes, rp.Nodes)
		next = RaftStep{Action: "join", Node: raftNodeName(in.token, slot, 0), Rollout: in.rollout, Slot: slot}
	case len(outNodes) > 0:
		servers, _, err := s.raftServers(ctx, append(slices.Clone(inNodes), outNodes...), "")
		if err != nil {
			return false, err
		}
		leaving := leaverOf(outNodes, servers)
		next = RaftStep{Action: "remove", Node: leaving.Labels[LabelRaftNode], Rollout: out.rollout, Slot: slotOf(leaving), Instance: leaving.ID}
		if next.Node == "" {
			return false, fmt.Errorf("rollout: role %q: node %s carries no %s label: it was launched before drover named raft nodes, so autopilot cannot tell which server it is; remove it by hand (vault operator raft remove-peer) and destroy it", r.Role, leaving.ID, LabelRaftNode)
		}
	default:
		return true, nil
	}
	if err := s.saveRaft(ctx, r, next.Action, fmt.Sprintf("%s node %s (slot %d of rollout %s)", next.Action, next.Node, next.Slot, next.Rollout), func(p *RaftProgress) {
		p.Step = &next
	}); err != nil {
		return false, err
	}
	return false, s.raftDo(ctx, r, next)
}

// raftDo does the side effects of st, then persists it done.
func (s *session) raftDo(ctx context.Context, r *Record, st RaftStep) error {
	start := time.Now()
	var (
		note string
		err  error
	)
	if st.Action == "join" {
		note, err = s.raftJoin(ctx, r, &st)
	} else {
		note, err = s.raftRemove(ctx, r, st)
	}
	if err != nil {
		return err
	}
	return s.saveRaft(ctx, r, st.Action, fmt.Sprintf("%s in %s", note, human(time.Since(start))), func(p *RaftProgress) {
		p.Step, p.Done = nil, append(p.Done, st)
	})
}

// raftJoin launches the node of st (by token: a second call finds the first instance), told to
// join the leader, waits until it runs, passes the deploy's checks and autopilot reports it a
// healthy voter, then points the cutover at every healthy voter. A node that removes itself from
// the cluster meanwhile is replaced by a fresh one (raftRejoin), a bounded number of times.
func (s *session) raftJoin(ctx context.Context, r *Record, st *RaftStep) (string, error) {
	in, out := raftSides(r)
	side := in
	if st.Rollout != in.rollout {
		side = out // a step persisted before the direction changed
	}
	for {
		if err := s.raftAbandon(ctx, r, st.Abandoned); err != nil {
			return "", err
		}
		members, err := s.raftMembers(ctx, r)
		if err != nil {
			return "", err
		}
		servers, _, err := s.raftServers(ctx, members, st.Node)
		if err != nil {
			return "", err
		}
		join := s.raftAPI(leaderOf(members, servers))
		node, err := s.launchNode(ctx, r, side, st.Slot, st.Node, join)
		if err != nil {
			return "", err
		}
		st.Instance = node.ID
		if node, err = s.waitNode(ctx, r, node.ID); err != nil {
			return "", err
		}
		removed, err := s.raftJoined(ctx, r, *st, node)
		if err != nil {
			return "", err
		}
		if removed {
			if err := s.raftRejoin(ctx, r, st, side, node); err != nil {
				return "", err
			}
			continue
		}
		if err := s.raftPoint(ctx, r, ""); err != nil {
			return "", err
		}
		note := fmt.Sprintf("node %s (%s) joined %s and is a healthy voter", st.Node, node.ID, orNone([]string{join}))
		if st.Attempt > 0 {
			note += fmt.Sprintf(" (attempt %d: %s removed themselves)", st.Attempt+1, strings.Join(st.Abandoned, ", "))
		}
		return note, nil
	}
}

// raftRemove points the cutover away from st's node, removes it from the raft configuration,
// waits until autopilot no longer lists it, and destroys its instance (its credential revoked).
func (s *session) raftRemove(ctx context.Context, r *Record, st RaftStep) (string, error) {
	// A join turned into a removal by a rollback may carry earlier attempts not yet cleaned up.
	if err := s.raftAbandon(ctx, r, st.Abandoned); err != nil {
		return "", err
	}
	if err := s.raftPoint(ctx, r, st.Node); err != nil {
		return "", err
	}
	members, err := s.raftMembers(ctx, r)
	if err != nil {
		return "", err
	}
	_, via, err := s.raftServers(ctx, members, st.Node)
	if err != nil {
		return "", err
	}
	cl, err := s.raftCluster(ctx)
	if err != nil {
		return "", err
	}
	if err := cl.RemovePeer(ctx, s.raftAddr(via), st.Node); err != nil {
		return "", fmt.Errorf("rollout: role %q: removing node %s from the raft configuration (asked of %s): %w", r.Role, st.Node, via.ID, err)
	}
	if err := s.waitVoter(ctx, r, st.Node, false); err != nil {
		return "", err
	}
	var gone []compute.Instance
	for _, in := range members {
		if in.Labels[LabelRaftNode] == st.Node {
			gone = append(gone, in)
		}
	}
	if err := terminateAll(ctx, s.comp, gone, s.c.revokeCredential); err != nil {
		return "", fmt.Errorf("rollout: role %q: destroying node %s: %w", r.Role, st.Node, err)
	}
	return fmt.Sprintf("node %s left the raft configuration and was destroyed", st.Node), nil
}

// launchNode launches the node name (its launch token, instance name and raft node ID) in slot of
// side, with the node ID and the address to join in its user-data.
func (s *session) launchNode(ctx context.Context, r *Record, side raftSide, slot int, name, join string) (compute.Instance, error) {
	at := *r
	at.Image = side.image
	img, err := s.bootImage(ctx, &at)
	if err != nil {
		return compute.Instance{}, err
	}
	spec := compute.Spec{
		Token: name, Name: name, Image: img, Ports: s.dep.Ports, CloudRole: s.dep.AWSIAMRole,
		Labels: map[string]string{LabelRole: r.Role, LabelColor: "green", LabelRollout: side.rollout, LabelSlot: strconv.Itoa(slot), LabelRaftNode: name},
	}
	if s.c.opts.UserData != nil {
		if spec.UserData, err = s.c.opts.UserData(ctx, r.Role, slot); err != nil {
			return compute.Instance{}, fmt.Errorf("rollout: role %q: user-data of node %s: %w", r.Role, name, err)
		}
	}
	if err := s.credentialFor(ctx, &at, slot, &spec); err != nil {
		return compute.Instance{}, err
	}
	if s.c.opts.RaftNode != nil {
		if spec.UserData, err = s.c.opts.RaftNode(r.Role, spec.UserData, name, join); err != nil {
			return compute.Instance{}, fmt.Errorf("rollout: role %q: user-data of node %s: %w", r.Role, name, err)
		}
	}
	in, err := s.comp.Launch(ctx, spec)
	if err != nil {
		return in, fmt.Errorf("rollout: role %q: launching node %s: %w", r.Role, name, err)
	}
	s.step(r.ID, "launch", fmt.Sprintf("node %s: %s %s at %s", name, in.ID, in.State, in.Address))
	return in, nil
}
