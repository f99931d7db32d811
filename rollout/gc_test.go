package rollout_test

import (
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

func TestGC(t *testing.T) {
	l, img1 := deployed(t)
	ctx := t.Context()
	stray, err := l.comp.Launch(ctx, compute.Spec{Token: "stray", Image: compute.Image{Identity: img1},
		Labels: map[string]string{rollout.LabelRole: "web", rollout.LabelRollout: "web-99-dead00", rollout.LabelColor: "green"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.store.Put(ctx, "images/in-use/sha256:0000", []byte(`{"identity":"sha256:0000","role":"web"}`), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.store.Acquire(ctx, "locks/role/web", "old@host pid 1", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * ms)
	c := l.controller()
	rep, err := c.GC(ctx, rollout.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Instances) != 1 || rep.Instances[0].ID != stray.ID || rep.Instances[0].Removed || len(rep.Marks) != 1 || len(rep.Leases) != 1 {
		t.Fatalf("dry run report %+v", rep)
	}
	if len(l.running("web")[img1]) != 3 {
		t.Fatal("dry run removed something")
	}
	rep, err = c.GC(ctx, rollout.GCOptions{Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Instances) != 1 || !rep.Instances[0].Removed || !rep.Marks[0].Removed || !rep.Leases[0].Removed {
		t.Fatalf("apply report %+v", rep)
	}
	if len(l.running("web")[img1]) != 2 {
		t.Fatal("the stray instance survived")
	}
	inUse, _ := rollout.ImagesInUse(ctx, l.store)
	if len(inUse) != 1 {
		t.Fatalf("marks after gc: %v", inUse)
	}
	rep, _ = c.GC(ctx, rollout.GCOptions{})
	if len(rep.Instances)+len(rep.Marks)+len(rep.Leases) != 0 {
		t.Fatalf("second gc found %+v", rep)
	}
}
