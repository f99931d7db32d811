package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/store"
)

// GCOptions adjust GC.
type GCOptions struct {
	// Apply removes what GC finds; without it GC only reports (a dry run).
	Apply bool
}

// GCReport is what GC found and, with Apply, removed.
type GCReport struct {
	Applied   bool         `json:"applied"`
	Instances []GCInstance `json:"instances"`
	Leases    []GCLease    `json:"leases"`
	Marks     []GCMark     `json:"marks"`
	// Skipped are roles whose lock another drover holds: their leftovers were left alone.
	Skipped []string `json:"skipped,omitempty"`
}

// GCInstance is an instance with drover's labels that no rollout owns.
type GCInstance struct {
	Compute string `json:"compute"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Rollout string `json:"rollout"`
	Reason  string `json:"reason"`
	Removed bool   `json:"removed"`
}

// GCLease is a role lock past its expiry.
type GCLease struct {
	Name    string    `json:"name"`
	Owner   string    `json:"owner"`
	Expired time.Time `json:"expired"`
	Removed bool      `json:"removed"`
}

// GCMark is an in-use image mark that no live or kept rollout backs.
type GCMark struct {
	Identity string `json:"identity"`
	Role     string `json:"role"`
	Reason   string `json:"reason"`
	Removed  bool   `json:"removed"`
}

// GC finds what no rollout owns: instances carrying drover's labels (role and rollout) of a rollout
// that is unknown or at an end, role locks past their expiry, and in-use marks of images no live or
// kept rollout runs. It looks at the compute providers of every deployed role of the fleet.
//
// Without opts.Apply nothing changes. With it, expired locks are released, then each role with
// leftovers is locked and re-read before its instances are terminated and its marks deleted, so a
// rollout that started meanwhile is never touched; a role locked by another drover is skipped. GC is
// idempotent: what a killed GC left is found again.
func (c *Controller) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	rep := &GCReport{Applied: opts.Apply, Instances: []GCInstance{}, Leases: []GCLease{}, Marks: []GCMark{}}
	items, err := c.opts.Store.List(ctx, rolloutPrefix)
	if err != nil {
		return nil, fmt.Errorf("rollout: gc: listing rollouts: %w", err)
	}
	all, err := decodeRecords(items)
	if err != nil {
		return nil, err
	}
	byRole := map[string][]*Record{}
	for _, r := range all {
		byRole[r.Role] = append(byRole[r.Role], r)
	}
	providers := map[string]compute.Provider{}
	for _, role := range c.opts.Fleet.Roles {
		if role.Deploy == nil {
			continue
		}
		if providers[role.Deploy.Compute] == nil {
			if providers[role.Deploy.Compute], err = c.computeOf(ctx, role.Name, role.Deploy); err != nil {
				return nil, err
			}
		}
		if err := c.gcLease(ctx, role.Name, opts.Apply, rep); err != nil {
			return rep, err
		}
	}
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	slices.Sort(names)
	found := map[string][]GCInstance{}
	for _, name := range names {
		ins, err := providers[name].Instances(ctx, nil)
		if err != nil {
			return rep, fmt.Errorf("rollout: gc: listing instances of compute %q: %w", name, err)
		}
		for _, in := range ins {
			if g, ok := orphan(name, in, byRole); ok {
				found[g.Role] = append(found[g.Role], g)
			}
		}
	}
	marks, err := readMarks(ctx, c.opts.Store)
	if err != nil {
		return rep, err
	}
	staleMarks := map[string][]InUseMark{}
	for _, m := range marks {
		if _, ok := wantedMarks(byRole[m.Role])[m.Identity]; !ok {
			staleMarks[m.Role] = append(staleMarks[m.Role], m)
		}
	}
	roles := map[string]bool{}
	for r := range found {
		roles[r] = true
	}
	for r := range staleMarks {
		roles[r] = true
	}
	order := make([]string, 0, len(roles))
	for r := range roles {
		order = append(order, r)
	}
	slices.Sort(order)
	for _, role := range order {
		if err := c.gcRole(ctx, role, opts.Apply, found[role], staleMarks[role], providers, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// gcLease reports (and with apply releases) a role lock past its expiry.
func (c *Controller) gcLease(ctx context.Context, role string, apply bool, rep *GCReport) error {
	l, err := c.opts.Store.Lease(ctx, lockName(role))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollout: gc: reading %s: %w", lockName(role), err)
	}
	if !l.Expired(time.Now()) {
		return nil
	}
	gl := GCLease{Name: l.Name, Owner: l.Owner, Expired: l.Expires}
	if apply {
		if err := c.opts.Store.Release(ctx, l); err != nil && !errors.Is(err, store.ErrLost) {
			return fmt.Errorf("rollout: gc: releasing %s: %w", l.Name, err)
		}
		gl.Removed = true
	}
	rep.Leases = append(rep.Leases, gl)
	return nil
}

// orphan says whether an instance has drover's labels and no rollout owning it.
func orphan(provider string, in compute.Instance, byRole map[string][]*Record) (GCInstance, bool) {
	role, id := in.Labels[LabelRole], in.Labels[LabelRollout]
	if role == "" || id == "" {
		return GCInstance{}, false
	}
	g := GCInstance{Compute: provider, ID: in.ID, Name: in.Name, Role: role, Rollout: id}
	recs := byRole[role]
	i := slices.IndexFunc(recs, func(r *Record) bool { return r.ID == id })
	switch {
	case i < 0:
		g.Reason = fmt.Sprintf("no rollout %s of role %s in the state store", id, role)
	case ownedOf(recs)[id] == nil:
		g.Reason = fmt.Sprintf("rollout %s is %s and no longer live", id, recs[i].State)
	default:
		return GCInstance{}, false
	}
	return g, true
}

// gcRole reports a role's leftovers and, with apply, removes them under the role's lock after
// reading its records again.
func (c *Controller) gcRole(ctx context.Context, role string, apply bool, ins []GCInstance, marks []InUseMark, providers map[string]compute.Provider, rep *GCReport) error {
	if !apply {
		rep.Instances = append(rep.Instances, ins...)
		for _, m := range marks {
			rep.Marks = append(rep.Marks, GCMark{Identity: m.Identity, Role: m.Role, Reason: "no live or kept rollout runs it"})
		}
		return nil
	}
	lk, lctx, err := c.tryLock(ctx, role) // gc never waits: a locked role is skipped and listed
	var locked *LockedError
	if errors.As(err, &locked) {
		rep.Skipped = append(rep.Skipped, role)
		return nil
	}
	if err != nil {
		return err
	}
	defer lk.release(context.WithoutCancel(ctx))
	recs, err := loadRecords(lctx, c.opts.Store, role)
	if err != nil {
		return err
	}
	byRole := map[string][]*Record{role: recs}
	for _, g := range ins {
		p := providers[g.Compute]
		cur, err := p.Instances(lctx, compute.Selector{LabelRole: role, LabelRollout: g.Rollout})
		if err != nil {
			return fmt.Errorf("rollout: gc: role %q: %w", role, err)
		}
		for _, in := range cur {
			if in.ID != g.ID {
				continue
			}
			if again, ok := orphan(g.Compute, in, byRole); ok {
				if err := c.revokeCredential(lctx, in); err != nil {
					return fmt.Errorf("rollout: gc: role %q: %w", role, err)
				}
				if err := p.Terminate(lctx, in.ID); err != nil {
					return fmt.Errorf("rollout: gc: role %q: terminating %s: %w", role, in.ID, err)
				}
				again.Removed = true
				rep.Instances = append(rep.Instances, again)
			}
		}
	}
	want := wantedMarks(recs)
	for _, m := range marks {
		if _, ok := want[m.Identity]; ok {
			continue
		}
		gm := GCMark{Identity: m.Identity, Role: m.Role, Reason: "no live or kept rollout runs it"}
		if err := c.opts.Store.Delete(lctx, inUseKey(m.Identity), m.version); err == nil || errors.Is(err, store.ErrNotFound) {
			gm.Removed = true
		}
		rep.Marks = append(rep.Marks, gm)
	}
	return nil
}
