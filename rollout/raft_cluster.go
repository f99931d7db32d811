package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// What the raft strategy asks of the cluster and the provider between node steps: which nodes
// exist, what autopilot says of them, where traffic goes. None of it is persisted; every answer is
// asked again after a crash.

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

// raftAPI is the API address a new node joins: the scheme of the vault check, the member's address
// as the provider's other instances reach it (its private address when the provider reports one:
// the lab's segment, where the host's loopback forwards are no way from one VM to another).
func (s *session) raftAPI(in compute.Instance) string {
	scheme := "http"
	for _, hc := range s.dep.Health {
		if hc.TLS() {
			scheme = "https"
		}
	}
	addr := s.raftAddr(in)
	if in.Private.IsValid() {
		addr = netip.AddrPortFrom(in.Private, addr.Port())
	}
	return scheme + "://" + addr.String()
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
