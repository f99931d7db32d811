package rollout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
)

// Plan actions: what a rollout of a role would do.
const (
	ActionFirstDeploy = "first-deploy" // no live rollout yet
	ActionRollout     = "rollout"      // a new image replaces the live one
	ActionResume      = "resume"       // a rollout of this image is in flight: start resumes it
	ActionUpToDate    = "up-to-date"   // the role already runs the image
	ActionBlocked     = "blocked"      // something must be done first (see Warnings)
	ActionNotDeployed = "not-deployed" // the role has no deploy block
)

// Plan is what drover rollout start would do for some roles, step by step, without doing any of it.
// It renders to text (WriteText) and to JSON (encoding/json).
type Plan struct {
	Roles []RolePlan `json:"roles"`
}

// RolePlan is the plan of one role.
type RolePlan struct {
	Role     string     `json:"role"`
	Action   string     `json:"action"`
	Image    *Image     `json:"image,omitempty"`   // what would be deployed
	Current  *Image     `json:"current,omitempty"` // what the live rollout runs
	Live     string     `json:"live,omitempty"`    // the live rollout
	Active   string     `json:"active,omitempty"`  // the rollout in flight
	State    State      `json:"state,omitempty"`   // its state
	Compute  string     `json:"compute,omitempty"`
	Count    int        `json:"count,omitempty"`
	Cutover  string     `json:"cutover,omitempty"`
	Steps    []PlanStep `json:"steps"`
	Warnings []string   `json:"warnings,omitempty"`
}

// PlanStep is one step. Done is set for the steps a resumed rollout has already made.
type PlanStep struct {
	N    int    `json:"n"`
	Kind string `json:"kind"`
	Text string `json:"text"`
	Done bool   `json:"done,omitempty"`
}

// PlanOptions adjust Plan.
type PlanOptions struct {
	// Image is a catalog reference to plan instead of each role's newest image.
	Image string
}

// Plan says what a rollout of each role would do (every deployed role when roles is empty). It reads
// the fleet, the catalog (once) and the state store (once), and never asks a provider or takes a lock,
// so it is fast and safe to run anytime; what it reports of instances is what the records say.
func (c *Controller) Plan(ctx context.Context, roles []string, opts PlanOptions) (*Plan, error) {
	if len(roles) == 0 {
		for _, r := range c.opts.Fleet.Roles {
			roles = append(roles, r.Name)
		}
	}
	manifests, err := c.opts.Catalog.List()
	if err != nil {
		return nil, fmt.Errorf("rollout: plan: %w", err)
	}
	newest := map[string]*images.Manifest{}
	for _, m := range manifests { // newest first within a role
		if newest[m.Role] == nil {
			newest[m.Role] = m
		}
	}
	items, err := c.opts.Store.List(ctx, rolloutPrefix)
	if err != nil {
		return nil, fmt.Errorf("rollout: plan: listing rollouts: %w", err)
	}
	all, err := decodeRecords(items)
	if err != nil {
		return nil, err
	}
	byRole := map[string][]*Record{}
	for _, r := range all {
		byRole[r.Role] = append(byRole[r.Role], r)
	}
	p := &Plan{Roles: make([]RolePlan, 0, len(roles))}
	for _, name := range roles {
		role := c.opts.Fleet.Role(name)
		if role == nil {
			return nil, fmt.Errorf("rollout: plan: no role %q in %s", name, c.opts.Fleet.Path)
		}
		img, missing, err := c.planImage(name, opts.Image, newest[name])
		if err != nil {
			return nil, err
		}
		p.Roles = append(p.Roles, c.planRole(role, img, missing, byRole[name]))
	}
	return p, nil
}

// planImage is the image a rollout of role would deploy: ref; without one, the fleet's current
// image; without CurrentImage (or for a role the fleet cannot say it of), the newest. Without an
// image, missing says why.
func (c *Controller) planImage(role, ref string, newest *images.Manifest) (img *Image, missing string, err error) {
	if ref != "" {
		i, err := c.resolveImage(role, ref)
		if err != nil {
			return nil, "", err
		}
		return &i, "", nil
	}
	id, err := c.currentImage(role)
	switch {
	case errors.Is(err, ErrNotBuilt):
		return nil, fmt.Sprintf("the image for the fleet as it is now (%s) is not built: drover build %s", images.ShortID(id), role), nil
	case err != nil:
		return nil, err.Error(), nil
	case id != "":
		return &Image{Identity: id, Short: images.ShortID(id)}, "", nil
	case newest != nil:
		return &Image{Identity: newest.Identity, Short: newest.ShortID()}, "", nil
	}
	return nil, fmt.Sprintf("no image of role %s in the catalog: drover build %s", role, role), nil
}

// planRole plans one role; missing says why there is no image when img is nil.
func (c *Controller) planRole(role *fleet.Role, img *Image, missing string, recs []*Record) RolePlan {
	rp := RolePlan{Role: role.Name, Image: img, Steps: []PlanStep{}}
	dep := role.Deploy
	if dep == nil {
		rp.Action = ActionNotDeployed
		return rp
	}
	rp.Compute, rp.Count = dep.Compute, max(dep.Count, 1)
	cut, cutErr := c.describeCutover(dep)
	rp.Cutover = cut.Target
	live := liveOf(recs)
	if live != nil {
		rp.Live, rp.Current = live.ID, &live.Image
	}
	var active *Record
	for i := len(recs) - 1; i >= 0 && active == nil; i-- {
		if !recs[i].State.Terminal() {
			active = recs[i]
		}
	}
	if active != nil {
		rp.Active, rp.State = active.ID, active.State
	}
	rp.Warnings = c.planWarnings(dep, cutErr)
	strat, stratErr := c.strategyOf(dep)
	switch {
	case img == nil:
		rp.Action = ActionBlocked
		rp.Warnings = append(rp.Warnings, missing)
		return rp
	case active != nil && active.Image.Identity == img.Identity:
		rp.Action = ActionResume
	case active != nil && active.State != Promoted:
		rp.Action = ActionBlocked
		rp.Warnings = append(rp.Warnings, fmt.Sprintf("rollout %s of image %s is %s: promote, roll back or abort it first", active.ID, active.Image.Short, active.State))
		return rp
	case live != nil && live.Image.Identity == img.Identity && active == nil:
		rp.Action = ActionUpToDate
		return rp
	case live == nil:
		rp.Action = ActionFirstDeploy
	default:
		rp.Action = ActionRollout
	}
	if stratErr == nil {
		if _, err := strat.Admit(dep, serving(active, live)); err != nil {
			rp.Warnings = append(rp.Warnings, err.Error())
		}
	}
	if len(rp.Warnings) > 0 {
		rp.Action = ActionBlocked
		return rp
	}
	p := &planner{role: role.Name, dep: dep, count: rp.Count, img: *img, live: live, active: active, cut: cut}
	p.add("lock", false, "lock role %s (lease %s)", role.Name, lockName(role.Name))
	if active != nil && active.Image.Identity != img.Identity {
		p.add("retire", false, "retire promoted rollout %s early: its kept blue is destroyed", active.ID)
	}
	strat.Plan(p)
	rp.Steps = p.steps
	return rp
}

// planner collects the steps of one role's plan; a strategy's Plan adds its own.
type planner struct {
	role         string
	dep          *fleet.Deploy
	count        int
	img          Image
	live, active *Record
	cut          CutoverPlan // how the deploy's cutover describes itself
	steps        []PlanStep
}

func (p *planner) add(kind string, done bool, format string, args ...any) {
	p.steps = append(p.steps, PlanStep{N: len(p.steps) + 1, Kind: kind, Text: fmt.Sprintf(format, args...), Done: done})
}

// done reports whether a resumed rollout of the planned image is already past s.
func (p *planner) done(s State) bool {
	return p.active != nil && p.active.Image.Identity == p.img.Identity && p.active.State.rank() > s.rank()
}

// describeCutover is the deploy's cutover as its type describes it; an unknown type is named by
// itself, with the error saying which are available.
func (c *Controller) describeCutover(dep *fleet.Deploy) (CutoverPlan, error) {
	typ := dep.Cutover.Type
	if typ == "" {
		typ = "none"
	}
	t, ok := c.cutovers[typ]
	if !ok {
		return CutoverPlan{Target: typ}, fmt.Errorf("cutover %q is not available (available: %s)", typ, strings.Join(sortedKeys(c.cutovers), ", "))
	}
	return t.Describe(dep.Cutover, max(dep.Count, 1)), nil
}

func (c *Controller) planWarnings(dep *fleet.Deploy, cutErr error) []string {
	var w []string
	if _, err := c.strategyOf(dep); err != nil {
		w = append(w, err.Error())
	}
	for _, hc := range dep.Health {
		if !c.health.Supports(hc.Type) {
			w = append(w, fmt.Sprintf("health check type %q is not supported yet (supported: %s)", hc.Type, strings.Join(c.health.Types(), ", ")))
		}
	}
	if cutErr != nil {
		w = append(w, cutErr.Error())
	}
	return w
}

func portsText(ports []int) string {
	if len(ports) == 0 {
		return "none"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// WriteText renders the plan for humans: one block per role.
func (p *Plan) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i, rp := range p.Roles {
		if i > 0 {
			bw.WriteString("\n")
		}
		fmt.Fprintf(bw, "%s: %s\n", rp.Role, rp.headline())
		for _, s := range rp.Steps {
			mark := " "
			if s.Done {
				mark = "✓"
			}
			fmt.Fprintf(bw, "  %s %2d. %-8s %s\n", mark, s.N, s.Kind, s.Text)
		}
		for _, warn := range rp.Warnings {
			fmt.Fprintf(bw, "  ! %s\n", warn)
		}
	}
	return bw.Flush()
}

func (rp RolePlan) headline() string {
	short := func(i *Image) string {
		if i == nil {
			return "nothing"
		}
		return i.Short
	}
	where := fmt.Sprintf("(compute %s, %d instance(s), cutover %s)", rp.Compute, rp.Count, rp.Cutover)
	switch rp.Action {
	case ActionNotDeployed:
		return "not deployed (no deploy block)"
	case ActionUpToDate:
		return fmt.Sprintf("up to date: runs image %s (rollout %s)", short(rp.Current), rp.Live)
	case ActionBlocked:
		return fmt.Sprintf("blocked: %s -> %s %s", short(rp.Current), short(rp.Image), where)
	case ActionResume:
		return fmt.Sprintf("resume rollout %s (%s): %s -> %s %s", rp.Active, rp.State, short(rp.Current), short(rp.Image), where)
	case ActionFirstDeploy:
		return fmt.Sprintf("first deploy of image %s %s", short(rp.Image), where)
	}
	return fmt.Sprintf("rollout %s -> %s %s", short(rp.Current), short(rp.Image), where)
}
