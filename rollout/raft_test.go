package rollout_test

import (
	"strings"
	"testing"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout"
)

func raftNode(count int) func(*fleet.Deploy) {
	return func(d *fleet.Deploy) { d.Strategy, d.Count = "raft", count }
}

// A raft role's first node deploys like bluegreen's first deploy; replacing it, which would boot an
// empty cluster and cut over to it, is refused, and so is a cluster of several nodes.
func TestRaftDeploysTheFirstNodeOnly(t *testing.T) {
	t.Run("first node", func(t *testing.T) {
		l, img1 := deployed(t, raftNode(1))
		if got := l.running("web")[img1]; len(got) != 1 {
			t.Fatalf("running nodes: %d, want 1", len(got))
		}
		l.build("web")
		c := l.controller()
		p, err := c.Plan(t.Context(), []string{"web"}, rollout.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rp := p.Roles[0]; rp.Action != rollout.ActionBlocked || !strings.Contains(strings.Join(rp.Warnings, "\n"), "cannot replace the running node yet") {
			t.Errorf("plan of a second image: %s %q", rp.Action, rp.Warnings)
		}
		rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
		if err == nil || !strings.Contains(err.Error(), `strategy "raft" cannot replace the running node yet`) || !strings.Contains(err.Error(), "empty cluster") {
			t.Fatalf("second rollout: %v", err)
		}
		if rec == nil || rec.Image.Identity != img1 {
			t.Errorf("record %+v, want the running one", rec)
		}
		if got := l.running("web"); len(got) != 1 || len(got[img1]) != 1 {
			t.Errorf("running after the refusal: %v", got)
		}
	})
	t.Run("several nodes", func(t *testing.T) {
		l := newLab(t, webRole(raftNode(3)))
		l.build("web")
		_, err := l.controller().Start(t.Context(), "web", rollout.StartOptions{})
		if err == nil || !strings.Contains(err.Error(), "count = 3") || !strings.Contains(err.Error(), "set count = 1") {
			t.Fatalf("start: %v", err)
		}
		if got := l.running("web"); len(got) != 0 {
			t.Errorf("instances launched: %v", got)
		}
	})
}
