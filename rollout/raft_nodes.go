package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
	s.step(r.ID, "watch", fmt.Sprintf("watching %d target(s) for %s", len(targets), max(window, 0)))
	var err error
	if len(s.checks) == 0 {
		err = sleepCtx(ctx, window)
	} else {
		err = health.Watch(ctx, s.checks, targets, window, s.observer(r, "watch"))
	}
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
		name := fmt.Sprintf("%s-%d", in.token, slot)
		next = RaftStep{Action: "join", Node: name, Rollout: in.rollout, Slot: slot}
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
// healthy voter, then points the cutover at every healthy voter.
func (s *session) raftJoin(ctx context.Context, r *Record, st *RaftStep) (string, error) {
	in, out := raftSides(r)
	side := in
	if st.Rollout != in.rollout {
		side = out // a step persisted before the direction changed
	}
	members, err := s.raftMembers(ctx, r)
	if err != nil {
		return "", err
	}
	servers, _, err := s.raftServers(ctx, members, "")
	if err != nil {
		return "", err
	}
	join := s.raftAPI(leaderOf(members, servers))
	node, err := s.launchNode(ctx, r, side, st.Slot, join)
	if err != nil {
		return "", err
	}
	st.Instance = node.ID
	if node, err = s.waitNode(ctx, r, node.ID); err != nil {
		return "", err
	}
	if len(s.checks) > 0 {
		if err := health.Gate(ctx, s.checks, []health.Target{target(node)}, s.observer(r, "health")); err != nil {
			return "", fmt.Errorf("rollout: role %q: node %s did not pass its checks; rerun to keep waiting, or roll back: %w", r.Role, st.Node, err)
		}
	}
	if err := s.waitVoter(ctx, r, st.Node, true); err != nil {
		return "", err
	}
	if err := s.raftPoint(ctx, r, ""); err != nil {
		return "", err
	}
	return fmt.Sprintf("node %s (%s) joined %s and is a healthy voter", st.Node, node.ID, orNone([]string{join})), nil
}

// raftRemove points the cutover away from st's node, removes it from the raft configuration,
// waits until autopilot no longer lists it, and destroys its instance (its credential revoked).
func (s *session) raftRemove(ctx context.Context, r *Record, st RaftStep) (string, error) {
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

// launchNode launches slot of side by token, with the node ID and the address to join in its
// user-data.
func (s *session) launchNode(ctx context.Context, r *Record, side raftSide, slot int, join string) (compute.Instance, error) {
	at := *r
	at.Image = side.image
	img, err := s.bootImage(ctx, &at)
	if err != nil {
		return compute.Instance{}, err
	}
	name := fmt.Sprintf("%s-%d", side.token, slot)
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

// nodesOf lists the running (not terminated) instances of a rollout of r's role.
func (s *session) nodesOf(ctx context.Context, r *Record, rollout string) ([]compute.Instance, error) {
	if rollout == "" {
		return nil, nil
	}
	return s.instancesOf(ctx, &Record{ID: rollout, Role: r.Role}, true)
}

// raftMembers are the instances of both sides: every node that may be in the cluster.
func (s *session) raftMembers(ctx context.Context, r *Record) ([]compute.Instance, error) {
	mine, err := s.nodesOf(ctx, r, r.ID)
	if err != nil {
		return nil, err
	}
	prev, err := s.nodesOf(ctx, r, r.Previous)
	if err != nil {
		return nil, err
	}
	return append(prev, mine...), nil
}

func freeSlot(nodes []compute.Instance, n int) int {
	for slot := range n {
		if !slices.ContainsFunc(nodes, func(in compute.Instance) bool { return slotOf(in) == slot }) {
			return slot
		}
	}
	return n
}

// leaverOf picks the node to remove next: a follower first (by slot), the leader last.
func leaverOf(nodes []compute.Instance, servers []RaftServer) compute.Instance {
	for _, in := range nodes {
		if !slices.ContainsFunc(servers, func(sv RaftServer) bool { return sv.Leader && sv.ID == in.Labels[LabelRaftNode] }) {
			return in
		}
	}
	return nodes[0]
}

// leaderOf returns the member autopilot names leader, or the first member.
func leaderOf(members []compute.Instance, servers []RaftServer) compute.Instance {
	for _, in := range members {
		if slices.ContainsFunc(servers, func(sv RaftServer) bool { return sv.Leader && sv.ID == in.Labels[LabelRaftNode] }) {
			return in
		}
	}
	return members[0]
}

// raftCluster opens the cluster's API client.
func (s *session) raftCluster(ctx context.Context) (RaftCluster, error) {
	if s.c.opts.Raft == nil {
		return nil, fmt.Errorf("rollout: role %q: replacing a raft cluster needs a token on it for autopilot's state and remove-peer; none is configured", s.role.Name)
	}
	cl, err := s.c.opts.Raft(ctx, s.role.Name)
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: the raft cluster: %w", s.role.Name, err)
	}
	return cl, nil
}

// raftServers asks autopilot's view of the cluster of the first member that answers, other than
// the node except (one being removed). via is the member that answered.
func (s *session) raftServers(ctx context.Context, members []compute.Instance, except string) ([]RaftServer, compute.Instance, error) {
	cl, err := s.raftCluster(ctx)
	if err != nil {
		return nil, compute.Instance{}, err
	}
	var errs []error
	for _, in := range members {
		if except != "" && in.Labels[LabelRaftNode] == except || in.State != compute.Running {
			continue
		}
		servers, err := cl.Servers(ctx, s.raftAddr(in))
		if err == nil {
			return servers, in, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", in.ID, err))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no running member to ask"))
	}
	return nil, compute.Instance{}, fmt.Errorf("rollout: role %q: reading autopilot's state: %w", s.role.Name, errors.Join(errs...))
}

// waitVoter waits until autopilot reports node a healthy voter (want) or no longer lists it.
func (s *session) waitVoter(ctx context.Context, r *Record, node string, want bool) error {
	deadline, poll := s.raftDeadline()
	end := time.Now().Add(deadline)
	for {
		members, err := s.raftMembers(ctx, r)
		if err != nil {
			return err
		}
		except := ""
		if !want {
			except = node // ask another member about the one that left
		}
		servers, _, err := s.raftServers(ctx, members, except)
		if err == nil {
			i := slices.IndexFunc(servers, func(sv RaftServer) bool { return sv.ID == node })
			if want && i >= 0 && servers[i].Voter && servers[i].Healthy || !want && i < 0 {
				return nil
			}
		}
		if time.Now().After(end) {
			what := "a healthy voter"
			if !want {
				what = "gone from the raft configuration"
			}
			return fmt.Errorf("rollout: role %q: node %s is not %s after %s (rerun to keep waiting, or roll back): %v", r.Role, node, what, deadline, err)
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return err
		}
	}
}

// waitNode polls the provider until the instance runs.
func (s *session) waitNode(ctx context.Context, r *Record, id string) (compute.Instance, error) {
	deadline, poll := s.raftDeadline()
	end := time.Now().Add(deadline)
	for {
		ins, err := s.comp.Instances(ctx, compute.Selector{LabelRole: r.Role})
		if err != nil {
			return compute.Instance{}, fmt.Errorf("rollout: role %q: listing instances: %w", r.Role, err)
		}
		i := slices.IndexFunc(ins, func(in compute.Instance) bool { return in.ID == id })
		switch {
		case i >= 0 && ins[i].State == compute.Running:
			return ins[i], nil
		case i < 0 || ins[i].State == compute.Terminated:
			return compute.Instance{}, fmt.Errorf("rollout: role %q: node %s died while booting; roll back, or abort before any node joined", r.Role, id)
		case time.Now().After(end):
			return compute.Instance{}, fmt.Errorf("rollout: role %q: node %s not running after %s", r.Role, id, deadline)
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return compute.Instance{}, err
		}
	}
}

// raftDeadline bounds a wait for a node, as the deploy's checks bound a boot: at least 5 minutes.
func (s *session) raftDeadline() (deadline, poll time.Duration) {
	deadline, poll = 5*time.Minute, time.Second
	for _, c := range s.checks {
		deadline, poll = max(deadline, c.Deadline), min(poll, c.Interval)
	}
	return deadline, poll
}

// raftPoint points the cutover at the members autopilot reports healthy voters, the leader first,
// leaving out except (a node about to leave). With none, it moves nothing.
func (s *session) raftPoint(ctx context.Context, r *Record, except string) error {
	if s.cut.Type() == "none" {
		return nil
	}
	members, err := s.raftMembers(ctx, r)
	if err != nil {
		return err
	}
	servers, _, err := s.raftServers(ctx, members, except)
	if err != nil {
		return err
	}
	var to []compute.Instance
	for _, in := range members {
		id := in.Labels[LabelRaftNode]
		i := slices.IndexFunc(servers, func(sv RaftServer) bool { return sv.ID == id })
		if id == except || i < 0 || !servers[i].Voter || !servers[i].Healthy {
			continue
		}
		if servers[i].Leader {
			to = append([]compute.Instance{in}, to...)
		} else {
			to = append(to, in)
		}
	}
	if len(to) == 0 {
		return nil
	}
	cur, err := s.cut.Current(ctx)
	if err != nil {
		return fmt.Errorf("rollout: role %q: reading cutover %s: %w", r.Role, s.cut.Target(), err)
	}
	if slices.Equal(sortedCopy(cur), sortedCopy(ids(to))) {
		return nil
	}
	if _, err := s.cut.Point(ctx, to); err != nil {
		return fmt.Errorf("rollout: role %q: pointing %s at the healthy voters: %w", r.Role, s.cut.Target(), err)
	}
	s.step(r.ID, "cutover", fmt.Sprintf("%s now at %s", s.cut.Target(), strings.Join(ids(to), ",")))
	return nil
}

func sortedCopy(v []string) []string { c := slices.Clone(v); slices.Sort(c); return c }

// raftPort is the port of the cluster's API: the vault check's, else the deploy's first, else 8200.
func (s *session) raftPort() int {
	for _, hc := range s.dep.Health {
		if hc.Type == "vault" && hc.Port > 0 {
			return hc.Port
		}
	}
	if len(s.dep.Ports) > 0 {
		return s.dep.Ports[0]
	}
	return 8200
}

func (s *session) raftAddr(in compute.Instance) netip.AddrPort { return in.Endpoint(s.raftPort()) }

// raftAPI is the API address a new node joins: the scheme of the vault check, the member's address.
func (s *session) raftAPI(in compute.Instance) string {
	scheme := "http"
	for _, hc := range s.dep.Health {
		if hc.TLS() {
			scheme = "https"
		}
	}
	return scheme + "://" + s.raftAddr(in).String()
}

// saveRaft persists a change of r's raft progress without a transition, reports it as a step, and
// is a crash point of r's state (the fault tests stop after every persisted node step).
func (s *session) saveRaft(ctx context.Context, r *Record, step, note string, mutate func(*RaftProgress)) error {
	next := r.clone()
	mutate(next.Progress.Raft)
	next.Updated = s.c.now()
	if err := saveRecord(ctx, s.c.opts.Store, next); err != nil {
		return err
	}
	*r = *next
	s.step(r.ID, step, note)
	return s.c.crashPoint(r.State)
}
