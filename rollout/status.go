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

// Status is where a role stands: its rollout in flight, what serves, its instances as the provider
// reports them, where the cutover points, and who holds its lock. It is read-only. It renders to
// text (WriteText) and to JSON (encoding/json) with the same facts.
type Status struct {
	Role      string           `json:"role"`
	Strategy  string           `json:"strategy"`         // the deploy block's
	Active    *Record          `json:"active,omitempty"` // the rollout in flight
	Live      *Record          `json:"live,omitempty"`   // the newest retired rollout
	Latest    *Record          `json:"latest,omitempty"` // the newest rollout, whatever its state
	Instances []InstanceStatus `json:"instances"`
	Cutover   CutoverStatus    `json:"cutover"`
	Lock      *LockStatus      `json:"lock,omitempty"`
	// BlueDue is set when a promoted rollout's keep_old has passed: the next command destroys blue.
	BlueDue bool `json:"blue_due,omitempty"`
	// VolumeOp is an unfinished drover volumes snapshot or restore of the role: rollout commands
	// are refused until its own command, run again, finishes it.
	VolumeOp *VolumeOp `json:"volume_op,omitempty"`
}

// InstanceStatus is one instance of the role with drover's labels.
type InstanceStatus struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Rollout string        `json:"rollout"`
	Slot    string        `json:"slot"`
	State   compute.State `json:"state"`
	Address string        `json:"address,omitempty"`
	// Owned is false for an instance no rollout should have any more (the next command destroys
	// it) or whose rollout is unknown (drover gc reports it).
	Owned bool `json:"owned"`
}

// CutoverStatus is where the cutover target points now.
type CutoverStatus struct {
	Type    string   `json:"type"`
	Target  string   `json:"target"`
	Current []string `json:"current,omitempty"`
}

// LockStatus is the holder of a role's lock.
type LockStatus struct {
	Owner    string    `json:"owner"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
	Expired  bool      `json:"expired"`
}

// Status reports where a role stands. It takes no lock and changes nothing.
func (c *Controller) Status(ctx context.Context, role string) (*Status, error) {
	_, dep, err := c.deployOf(role)
	if err != nil {
		return nil, err
	}
	recs, err := loadRecords(ctx, c.opts.Store, role)
	if err != nil {
		return nil, err
	}
	strat, err := c.strategyOf(dep)
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: %w", role, err)
	}
	st := &Status{Role: role, Strategy: strat.Name(), Live: liveOf(recs), Instances: []InstanceStatus{}}
	if len(recs) > 0 {
		st.Latest = recs[len(recs)-1]
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if !recs[i].State.Terminal() {
			st.Active = recs[i]
			break
		}
	}
	if a := st.Active; a != nil && a.State == Promoted && !c.now().Before(a.KeepUntil) {
		st.BlueDue = true
	}
	ops, err := loadVolumeOps(ctx, c.opts.Store, role)
	if err != nil {
		return nil, err
	}
	st.VolumeOp = pendingOp(ops)
	if l, err := c.opts.Store.Lease(ctx, lockName(role)); err == nil {
		st.Lock = &LockStatus{Owner: l.Owner, Acquired: l.Acquired, Expires: l.Expires, Expired: l.Expired(time.Now())}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("rollout: role %q: reading the lock: %w", role, err)
	}
	comp, err := c.computeOf(ctx, role, dep)
	if err != nil {
		return nil, err
	}
	ins, err := comp.Instances(ctx, compute.Selector{LabelRole: role})
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: listing instances: %w", role, err)
	}
	owned := ownedOf(recs)
	for _, in := range ins {
		id := in.Labels[LabelRollout]
		if id == "" {
			continue
		}
		is := InstanceStatus{ID: in.ID, Name: in.Name, Rollout: id, Slot: in.Labels[LabelSlot], State: in.State, Owned: owned[id] != nil}
		if in.Address.IsValid() {
			is.Address = in.Address.String()
		}
		st.Instances = append(st.Instances, is)
	}
	cut, err := c.cutoverOf(ctx, role, dep)
	if err != nil {
		return nil, err
	}
	st.Cutover = CutoverStatus{Type: cut.Type(), Target: cut.Target()}
	if st.Cutover.Current, err = cut.Current(ctx); err != nil {
		return nil, fmt.Errorf("rollout: role %q: reading cutover %s: %w", role, cut.Target(), err)
	}
	return st, nil
}

// History returns a role's rollouts, newest first. It reads only the store.
func (c *Controller) History(ctx context.Context, role string) ([]*Record, error) {
	recs, err := loadRecords(ctx, c.opts.Store, role)
	if err != nil {
		return nil, err
	}
	slices.Reverse(recs)
	return recs, nil
}
