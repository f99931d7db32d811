package rollout_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-dev/drover/rollout"
)

// A rollout without --image deploys the image the fleet describes now, not the newest one built:
// after a revert, the older image comes back even though a newer one is in the catalog.
func TestStartDeploysTheFleetsCurrentImage(t *testing.T) {
	l := newLab(t, webRole())
	v1 := l.build("web")
	v2 := l.build("web") // the newest
	current := v1
	c := l.controller(func(o *rollout.Options) {
		o.CurrentImage = func(role string) (string, error) {
			if role != "web" {
				t.Errorf("CurrentImage(%q)", role)
			}
			return current, nil
		}
	})
	plan, err := c.Plan(t.Context(), []string{"web"}, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Roles[0].Image == nil || plan.Roles[0].Image.Identity != v1 {
		t.Errorf("plan image %+v, want v1 %s (not the newest, %s)", plan.Roles[0].Image, v1, v2)
	}
	rec, err := c.Start(t.Context(), "web", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	if rec.Image.Identity != v1 {
		t.Errorf("started image %s, want v1 %s", rec.Image.Identity, v1)
	}

	// An explicit image wins.
	if _, err := c.Abort(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	rec, err = c.Start(t.Context(), "web", rollout.StartOptions{Image: v2})
	mustRecord(t, rec, err, rollout.Ready)
	if rec.Image.Identity != v2 {
		t.Errorf("--image %s started %s", v2, rec.Image.Identity)
	}
	if _, err := c.Abort(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}

	// A fleet whose image is not built yet is refused, naming the image and the command.
	current = "sha256:" + strings.Repeat("ab", 32)
	_, err = c.Start(t.Context(), "web", rollout.StartOptions{})
	if !errors.Is(err, rollout.ErrNotBuilt) || !strings.Contains(err.Error(), "abababababab") || !strings.Contains(err.Error(), "drover build web") {
		t.Errorf("start with an unbuilt image: %v", err)
	}
	plan, err = c.Plan(t.Context(), []string{"web"}, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rp := plan.Roles[0]; rp.Action != rollout.ActionBlocked || rp.Image != nil || !strings.Contains(strings.Join(rp.Warnings, "; "), "(abababababab) is not built: drover build web") {
		t.Errorf("plan with an unbuilt image: %+v", rp)
	}
}
