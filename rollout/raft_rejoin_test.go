package rollout_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drover-dev/drover/rollout"
)

// selfRemoving makes the nodes of a replacement that match remove themselves while they join, as
// Vault does on a slow host (hashicorp/vault#32099); the cluster's first deploy is done already.
func selfRemoving(f *fakeRaft, match func(node string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.selfRemove = match
}

// checkRejoined checks that the cluster is the 3 nodes of img, none of them one that removed itself,
// that every node that removed itself left the raft configuration and its instance was destroyed,
// and that no removal left fewer than three healthy voters.
func checkRejoined(t *testing.T, l *lab, f *fakeRaft, img string) (abandoned []string) {
	t.Helper()
	got := l.running("web")
	if len(got) != 1 || len(got[img]) != 3 {
		t.Errorf("running after the replacement: %d image(s), %d of %.12s; want 3 of it only", len(got), len(got[img]), img)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range got[img] {
		if f.selfRemoved[in.Labels[rollout.LabelRaftNode]] {
			t.Errorf("node %s, which removed itself, is still running", in.Name)
		}
	}
	for id := range f.selfRemoved {
		abandoned = append(abandoned, id)
		if !slices.Contains(f.removals, id) {
			t.Errorf("node %s removed itself but was never removed from the raft configuration (removals %v)", id, f.removals)
		}
	}
	for _, v := range f.violation {
		t.Error(v)
	}
	slices.Sort(abandoned)
	return abandoned
}

// A joining node that removes itself from the cluster is undone (removed from the raft
// configuration, destroyed) and a fresh node with a new ID joins in its place; the replacement
// goes on, each join in its second attempt.
func TestRaftRejoinsANodeThatRemovedItself(t *testing.T) {
	l, f, _ := raftLab(t)
	img2 := l.build("web")
	selfRemoving(f, func(node string) bool { return !strings.Contains(node, "-try") })
	rec, err := l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{AutoPromote: new(true)})
	mustRecord(t, rec, err, rollout.Retired)
	abandoned := checkRejoined(t, l, f, img2)
	if len(abandoned) != 3 {
		t.Errorf("nodes that removed themselves: %v, want the first attempt of each of the 3 joins", abandoned)
	}
	for _, in := range l.running("web")[img2] {
		if !strings.HasSuffix(in.Name, "-try2") || in.Labels[rollout.LabelRaftNode] != in.Name {
			t.Errorf("node %s (raft ID %s): want a second attempt's name", in.Name, in.Labels[rollout.LabelRaftNode])
		}
	}
	var joins int
	for _, st := range rec.Progress.Raft.Done {
		if st.Action != "join" {
			continue
		}
		joins++
		if st.Attempt != 1 || len(st.Abandoned) != 1 || st.Abandoned[0]+"-try2" != st.Node {
			t.Errorf("join step %+v: want attempt 1 that abandoned the first node", st)
		}
	}
	if joins != 3 {
		t.Errorf("%d join steps, want 3", joins)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var rejoins int
	for _, e := range l.events {
		if e.Kind == "step" && e.Step == "rejoin" && strings.Contains(e.Message, "hashicorp/vault#32099") {
			rejoins++
		}
	}
	if rejoins != 3 {
		t.Errorf("%d rejoin events naming Vault's bug, want 3", rejoins)
	}
}

// drover killed (-9) after every persisted step, including each new attempt of a join, converges:
// every node that removed itself is removed and destroyed, the cluster is 3 new nodes.
func TestRaftRejoinSurvivesCrashAfterEveryStep(t *testing.T) {
	l, f, _ := raftLab(t)
	img2 := l.build("web")
	rec, err := l.controller(f.options).Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	// Slots 0 and 2 remove themselves twice, slot 1 once.
	selfRemoving(f, func(node string) bool {
		return strings.HasSuffix(node, "-1") || strings.HasSuffix(node, "-0") || strings.HasSuffix(node, "-2") ||
			strings.HasSuffix(node, "-0-try2") || strings.HasSuffix(node, "-2-try2")
	})
	crashing := crashingAt(t, l, f, rollout.CuttingOver)
	runs := 0
	for ; runs < 60; runs++ {
		_, err = crashing.Promote(t.Context(), "web")
		if !errors.Is(err, rollout.ErrCrashed) {
			break
		}
	}
	rec, err = l.controller(f.options).Promote(t.Context(), "web")
	mustRecord(t, rec, err, rollout.Retired)
	// cutting-over, two persisted points per node step for six steps, one per new attempt (5)
	if runs != 18 {
		t.Errorf("%d crashed runs, want 18", runs)
	}
	if abandoned := checkRejoined(t, l, f, img2); len(abandoned) != 5 {
		t.Errorf("nodes that removed themselves: %v, want 5", abandoned)
	}
}

// A join whose every node removes itself stops after maxRaftJoinAttempts (5) nodes, naming Vault's
// bug, with the last node still the step in flight; a rollback removes it and walks back.
func TestRaftRejoinGivesUpAndRollsBack(t *testing.T) {
	l, f, img1 := raftLab(t)
	img2 := l.build("web")
	selfRemoving(f, func(node string) bool { return !strings.Contains(node, "-back-") })
	c := l.controller(f.options)
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "web")
	if err == nil || !strings.Contains(err.Error(), "removed itself from the cluster") || !strings.Contains(err.Error(), "hashicorp/vault#32099") {
		t.Fatalf("promote with nodes that always remove themselves: %v", err)
	}
	st := rec.Progress.Raft.Step
	if rec.State != rollout.CuttingOver || st == nil || st.Action != "join" || st.Attempt != 4 || len(st.Abandoned) != 4 {
		t.Fatalf("after giving up: %s, step %+v; want the 5th attempt of the join in flight", rec.State, st)
	}
	if n := len(l.running("web")[img2]); n != 1 {
		t.Errorf("%d node(s) of the new image running, want the last attempt only", n)
	}
	rec, err = c.Rollback(t.Context(), "web")
	mustRecord(t, rec, err, rollout.RolledBack)
	if got := l.running("web"); len(got) != 1 || len(got[img1]) != 3 {
		t.Errorf("after the rollback: %d image(s), %d node(s) of image 1", len(got), len(got[img1]))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.selfRemoved {
		if !slices.Contains(f.removals, id) {
			t.Errorf("node %s removed itself but was never removed from the raft configuration", id)
		}
	}
	for _, v := range f.violation {
		t.Error(v)
	}
}
