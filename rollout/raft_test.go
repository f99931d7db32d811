package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

func raftNode(count int) func(*fleet.Deploy) {
	return func(d *fleet.Deploy) { d.Strategy, d.Count = "raft", count }
}

// fakeRaft is a raft cluster over the lab's instances: every running node with a raft-node label
// is a healthy voter once launched, until it is removed; the leader is the oldest member. It checks,
// at every remove-peer, that the cluster keeps at least want healthy voters besides the one leaving,
// and records the order of removals and whether each removed node was the leader then.
type fakeRaft struct {
	l    *lab
	want int

	mu        sync.Mutex
	removed   map[string]bool
	joinOrder []string
	removals  []string
	leaderOut []bool // per removal: the node was the leader
	violation []string
	userData  map[string]string // node ID -> join address it was given

	// selfRemove, when set, says at its launch whether a node will remove itself from the cluster
	// while it joins, as Vault does on a slow host (hashicorp/vault#32099): the leader then lists
	// it as an unhealthy non-voter, it answers no autopilot state and reports itself removed.
	selfRemove  func(node string) bool
	selfRemoved map[string]bool
}

func newFakeRaft(l *lab, want int) *fakeRaft {
	return &fakeRaft{l: l, want: want, removed: map[string]bool{}, userData: map[string]string{}, selfRemoved: map[string]bool{}}
}

func (f *fakeRaft) options(o *rollout.Options) {
	o.Raft = func(context.Context, string) (rollout.RaftCluster, error) { return f, nil }
	o.RaftNode = func(role string, ud []byte, node, join string) ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, seen := f.userData[node]; !seen {
			f.userData[node] = join
			f.joinOrder = append(f.joinOrder, node)
			if f.selfRemove != nil && f.selfRemove(node) {
				f.selfRemoved[node] = true
			}
		}
		return append(ud, fmt.Sprintf("raft node=%s join=%s", node, join)...), nil
	}
}

// members returns the member IDs, oldest first, and the instance ID serving addr.
func (f *fakeRaft) members(ctx context.Context, addr netip.AddrPort) (ids []string, self string, err error) {
	ins, err := f.l.comp.Instances(ctx, compute.Selector{rollout.LabelRole: "web"})
	if err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.joinOrder {
		for _, in := range ins {
			if in.Labels[rollout.LabelRaftNode] == id && in.State == compute.Running && !f.removed[id] {
				ids = append(ids, id)
				if in.Endpoint(int(addr.Port())) == addr {
					self = id
				}
			}
		}
	}
	return ids, self, nil
}

func (f *fakeRaft) Servers(ctx context.Context, addr netip.AddrPort) ([]rollout.RaftServer, error) {
	ids, self, err := f.members(ctx, addr)
	if err != nil || self == "" {
		return nil, fmt.Errorf("%s is not a member of the cluster (%v)", addr, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.selfRemoved[self] {
		return nil, fmt.Errorf("%s removed itself from the cluster", self)
	}
	out := make([]rollout.RaftServer, 0, len(ids))
	for i, id := range ids {
		ok := !f.selfRemoved[id]
		out = append(out, rollout.RaftServer{ID: id, Leader: i == 0, Voter: ok, Healthy: ok})
	}
	return out, nil
}

func (f *fakeRaft) Removed(ctx context.Context, addr netip.AddrPort) (bool, error) {
	_, self, err := f.members(ctx, addr)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.selfRemoved[self], nil
}

func (f *fakeRaft) RemovePeer(ctx context.Context, addr netip.AddrPort, id string) error {
	ids, self, err := f.members(ctx, addr)
	if err != nil || self == "" {
		return fmt.Errorf("%s is not a member of the cluster (%v)", addr, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(ids, id) {
		return nil
	}
	left := 0 // healthy voters besides the one leaving
	for _, m := range ids {
		if m != id && !f.selfRemoved[m] {
			left++
		}
	}
	if left < f.want {
		f.violation = append(f.violation, fmt.Sprintf("removing %s leaves %d voter(s), want at least %d", id, left, f.want))
	}
	f.removed[id] = true
	f.removals = append(f.removals, id)
	f.leaderOut = append(f.leaderOut, ids[0] == id)
	return nil
}

// raftLab deploys a 3-node cluster of image 1 and returns the lab, the fake cluster and the image.
func raftLab(t *testing.T) (*lab, *fakeRaft, string) {
	t.Helper()
	l := newLab(t, webRole(raftNode(3)))
	f := newFakeRaft(l, 3)
	img1 := l.build("web")
	c := l.controller(f.options)
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	return l, f, img1
}

// A first deploy of three nodes boots node 0 alone (no join address: it starts the cluster), then
// the two others, each told node 0's API address; the failover IP goes to one of them.
func TestRaftFirstDeployJoinsNodeZero(t *testing.T) {
	l, f, img1 := raftLab(t)
	nodes := l.running("web")[img1]
	if len(nodes) != 3 {
		t.Fatalf("running nodes: %d, want 3", len(nodes))
	}
	var zero compute.Instance
	for _, in := range nodes {
		if in.Labels[rollout.LabelSlot] == "0" {
			zero = in
		}
	}
	wantJoin := "http://" + zero.Endpoint(80).String()
	if len(f.joinOrder) != 3 || f.userData[f.joinOrder[0]] != "" || !strings.HasSuffix(f.joinOrder[0], "-0") {
		t.Fatalf("join order %v (user-data %v): want node 0 first, without a join address", f.joinOrder, f.userData)
	}
	for _, n := range f.joinOrder[1:] {
		if f.userData[n] != wantJoin {
			t.Errorf("node %s joins %q, want %q", n, f.userData[n], wantJoin)
		}
	}
	if _, img, _ := l.holder(); img != img1 {
		t.Errorf("failover IP on image %s", img)
	}
}

// checkReplaced checks that the cluster is count nodes of img only, that every removal left at least
// three voters and removed the leader only as the last old node.
func checkReplaced(t *testing.T, l *lab, f *fakeRaft, img string, old []string) {
	t.Helper()
	got := l.running("web")
	if len(got) != 1 || len(got[img]) != 3 {
		t.Errorf("running after the replacement: %d image(s), %d of %s; want 3 of it only", len(got), len(got[img]), img[:12])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violation {
		t.Error(v)
	}
	if !slices.Equal(sortedCopy(f.removals), sortedCopy(old)) {
		t.Errorf("removed %v, want the old nodes %v", f.removals, old)
	}
	for i, wasLeader := range f.leaderOut {
		if wasLeader && i != len(f.leaderOut)-1 {
			t.Errorf("removal %d (%s) removed the leader before the last old node: %v", i, f.removals[i], f.removals)
		}
	}
	if _, hImg, _ := l.holder(); hImg != img {
		t.Errorf("failover IP on image %.19s, want %.19s", hImg, img)
	}
}

func sortedCopy(v []string) []string { c := slices.Clone(v); slices.Sort(c); return c }

// A new image replaces the cluster one node at a time: join one, remove one, the leader last;
// never fewer than three voters but for the one leaving.
func TestRaftReplacesOneNodeAtATime(t *testing.T) {
	l, f, _ := raftLab(t)
	old := slices.Clone(f.joinOrder)
	img2 := l.build("web")
	c := l.controller(f.options)
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if got := l.running("web")[img2]; len(got) != 0 {
		t.Fatalf("%d node(s) of the new image before promote", len(got))
	}
	rec, err = c.Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	checkReplaced(t, l, f, img2, old)
	var steps []string
	for _, st := range rec.Progress.Raft.Done {
		steps = append(steps, st.Action)
	}
	if want := "join remove join remove join remove"; strings.Join(steps, " ") != want {
		t.Errorf("node steps %v, want %s", steps, want)
	}
}

// drover killed (-9) after every persisted node step, and rerun, converges to the same cluster.
func TestRaftReplacementSurvivesCrashAfterEveryStep(t *testing.T) {
	l, f, _ := raftLab(t)
	old := slices.Clone(f.joinOrder)
	img2 := l.build("web")
	rec, err := l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	crashing := crashingAt(t, l, f, rollout.CuttingOver)
	runs := 0
	for ; runs < 40; runs++ {
		_, err = crashing.Promote(t.Context(), "web")
		if !errors.Is(err, rollout.ErrCrashed) {
			break
		}
	}
	rec, err = l.controller(f.options).Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	// cutting-over, then two persisted points per node step (step chosen, step done) for six steps
	if runs != 13 {
		t.Errorf("%d crashed runs, want 13", runs)
	}
	checkReplaced(t, l, f, img2, old)
}

// A rollback part way walks the steps back: nodes of the old image join, the new ones leave, and
// the previous rollout serves again.
func TestRaftRollbackWalksBack(t *testing.T) {
	l, f, img1 := raftLab(t)
	img2 := l.build("web")
	rec, err := l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	prev := rec.Previous
	crashing := crashingAt(t, l, f, rollout.CuttingOver)
	for range 6 { // into the second join
		if _, err := crashing.Promote(t.Context(), "web"); !errors.Is(err, rollout.ErrCrashed) {
			t.Fatalf("promote: %v", err)
		}
	}
	if n := len(l.running("web")[img2]); n == 0 {
		t.Fatalf("no node of the new image joined before the rollback")
	}
	rec, err = l.controller(f.options).Rollback(t.Context(), "web")
	mustRecord(t, rec, err, rollout.RolledBack)
	got := l.running("web")
	if len(got) != 1 || len(got[img1]) != 3 {
		t.Errorf("after the rollback: %d image(s), %d node(s) of the old one; want 3 of it only", len(got), len(got[img1]))
	}
	for _, in := range got[img1] {
		if in.Labels[rollout.LabelRollout] != prev {
			t.Errorf("node %s belongs to rollout %s, want the previous %s", in.ID, in.Labels[rollout.LabelRollout], prev)
		}
	}
	f.mu.Lock()
	for _, v := range f.violation {
		t.Error(v)
	}
	f.mu.Unlock()
	if _, hImg, _ := l.holder(); hImg != img1 {
		t.Errorf("failover IP on image %.19s after the rollback", hImg)
	}
	// The previous rollout serves again: the next start replaces it with image 2 from scratch.
	rec, err = l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{AutoPromote: new(true)})
	mustRecord(t, rec, err, rollout.Retired)
	if got := l.running("web"); len(got[img2]) != 3 || len(got) != 1 {
		t.Errorf("after a new replacement: %v", got)
	}
}

// A replacement without a token on the cluster stops in checking, with nothing changed.
func TestRaftReplacementNeedsTheCluster(t *testing.T) {
	l, f, img1 := raftLab(t)
	l.build("web")
	rec, err := l.controller().Start(t.Context(), "web", rollout.StartOptions{})
	if err == nil || !strings.Contains(err.Error(), "needs a token on it") || rec.State != rollout.Checking {
		t.Fatalf("start without the cluster: %v (%s)", err, rec.State)
	}
	if got := l.running("web"); len(got) != 1 || len(got[img1]) != 3 {
		t.Errorf("running: %v", got)
	}
	_ = f
}

// Even counts and clusters beyond 7 are refused before anything launches.
func TestRaftRefusesCountsWithoutQuorum(t *testing.T) {
	for _, n := range []int{2, 4, 9} {
		l := newLab(t, webRole(raftNode(n)))
		l.build("web")
		_, err := l.controller().Start(t.Context(), "web", rollout.StartOptions{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("count = %d", n)) {
			t.Errorf("count %d: %v", n, err)
		}
		if got := l.running("web"); len(got) != 0 {
			t.Errorf("count %d: instances launched: %v", n, got)
		}
	}
}

// crashingAt is a controller that stops as if killed (-9) after every persisted step in state,
// under the name of a process of this host that is gone, so a rerun takes its lock over at once.
func crashingAt(t *testing.T, l *lab, f *fakeRaft, state rollout.State) *rollout.Controller {
	host, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	dead := deadPID(t)
	return l.controller(f.options, func(o *rollout.Options) {
		o.CrashAfter, o.Owner = state, "crashed@"+host+" pid "+dead
	})
}

// drover plan says a replacement goes one node at a time, the leader last.
func TestRaftPlanOfAReplacement(t *testing.T) {
	l, f, _ := raftLab(t)
	l.build("web")
	p, err := l.controller(f.options).Plan(t.Context(), []string{"web"}, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rp := p.Roles[0]
	var text []string
	for _, st := range rp.Steps {
		text = append(text, st.Kind+": "+st.Text)
	}
	all := strings.Join(text, "\n")
	if rp.Action != rollout.ActionRollout || !strings.Contains(all, "replace: replace the 3 node(s)") || !strings.Contains(all, "one at a time") || !strings.Contains(all, "the old leader last") {
		t.Errorf("plan %s:\n%s\nwarnings %v", rp.Action, all, rp.Warnings)
	}
}

// A new cluster that fails the watch after the last old node left is walked back node by node, not
// destroyed: the previous image's nodes serve again.
func TestRaftWatchFailureWalksBack(t *testing.T) {
	l, f, img1 := raftLab(t)
	img2 := l.build("web")
	l.mu.Lock()
	l.onEvent = func(e rollout.Event) {
		if e.Kind == "transition" && e.State == rollout.Draining {
			l.setHealthy(img2, false)
		}
	}
	l.mu.Unlock()
	rec, err := l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{AutoPromote: new(true)})
	if rec.State != rollout.RolledBack || err == nil || !strings.Contains(err.Error(), "failed its post-cutover watch and was walked back") {
		t.Fatalf("state %s (%v), want rolled-back with the watch's failure", rec.State, err)
	}
	got := l.running("web")
	if len(got) != 1 || len(got[img1]) != 3 {
		t.Errorf("after the walk back: %d image(s), %d node(s) of image 1; want 3 of it only", len(got), len(got[img1]))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violation {
		t.Error(v)
	}
}

// A new node that never passes its checks (it cannot join) leaves the rollout stuck in its join;
// a rollback turns that join into the node's removal and walks back.
func TestRaftRollbackOfAJoinThatNeverEnds(t *testing.T) {
	l, f, img1 := raftLab(t)
	img2 := l.build("web")
	l.setHealthy(img2, false)
	c := l.controller(f.options)
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	if err == nil || rec.State != rollout.CuttingOver || rec.Progress.Raft.Step == nil || rec.Progress.Raft.Step.Action != "join" {
		t.Fatalf("promote with an unhealthy new node: %v (%s, step %+v)", err, rec.State, rec.Progress.Raft.Step)
	}
	rec, err = c.Rollback(t.Context(), "web")
	mustRecord(t, rec, err, rollout.RolledBack)
	if got := l.running("web"); len(got) != 1 || len(got[img1]) != 3 {
		t.Errorf("after the rollback: %d image(s), %d node(s) of image 1", len(got), len(got[img1]))
	}
}
