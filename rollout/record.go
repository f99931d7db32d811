package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/rollout/health"
)

// Store keys. A rollout record lives under rolloutKey; nothing else is needed to resume it. Records
// hold no secret: no user-data, and console tails are redacted.
const (
	rolloutPrefix = "rollouts/"      // rollouts/<role>/<seq>: one record per rollout
	inUsePrefix   = "images/in-use/" // images/in-use/<identity>: images a live or kept rollout runs
	lockPrefix    = "locks/role/"    // the lease of a role
)

func rolloutKey(role string, seq int) string {
	return fmt.Sprintf("%s%s/%08d", rolloutPrefix, role, seq)
}
func roleKeyPrefix(role string) string { return rolloutPrefix + role + "/" }
func inUseKey(identity string) string  { return inUsePrefix + identity }
func lockName(role string) string      { return lockPrefix + role }

// Kinds of rollout.
const (
	KindRollout  = "rollout"  // drover rollout start
	KindRollback = "rollback" // drover rollout rollback after keep_old: the previous image redeployed
)

// Record is a rollout as persisted in the store (JSON under rollouts/<role>/<seq>). Every transition
// updates it with compare-and-swap before the next side effect.
type Record struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	Seq      int    `json:"seq"`
	Kind     string `json:"kind"`
	State    State  `json:"state"`
	Strategy string `json:"strategy"` // the strategy that drives it (Strategy.Name)
	Compute  string `json:"compute"`  // the compute block
	Count    int    `json:"count"`
	Owner    string `json:"owner"` // who started it: user@host pid N

	Image         Image  `json:"image"`
	PreviousImage *Image `json:"previous_image,omitempty"`
	Previous      string `json:"previous,omitempty"` // the blue rollout's ID; "" on a first deploy

	Created     time.Time    `json:"created"`
	Updated     time.Time    `json:"updated"`
	Transitions []Transition `json:"transitions"`

	Blue  []InstanceRef `json:"blue,omitempty"`  // the previous rollout's instances when this one was planned
	Green []InstanceRef `json:"green,omitempty"` // this rollout's instances

	Progress Progress `json:"progress,omitzero"` // the strategy's own state

	Cutover     CutoverRecord `json:"cutover"`
	AutoPromote bool          `json:"auto_promote"`
	KeepOld     Duration      `json:"keep_old"`
	Watch       Duration      `json:"watch"`
	KeepUntil   time.Time     `json:"keep_until,omitzero"` // set at promoted: blue is destroyed after it

	Health *health.Failure `json:"health_failure,omitempty"` // why checks failed
	Errors []ErrorEntry    `json:"errors,omitempty"`

	version uint64
}

// Image names an image of the catalog.
type Image struct {
	Identity string `json:"identity"`
	Short    string `json:"short"`
}

// Transition is one state change, when it was persisted, and why.
type Transition struct {
	State State     `json:"state"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// InstanceRef is an instance as a record remembers it, for humans: the controller itself always asks
// the provider.
type InstanceRef struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Slot    int    `json:"slot"`
	Address string `json:"address,omitempty"`
}

// CutoverRecord is what the cutover target pointed at before and after.
type CutoverRecord struct {
	Type   string   `json:"type"`             // ip, dns, none
	Target string   `json:"target,omitempty"` // for humans: ip "front" 127.0.0.100
	Before []string `json:"before,omitempty"` // instance IDs it pointed at before the cutover
	After  []string `json:"after,omitempty"`
	Note   string   `json:"note,omitempty"`
	// Snapshot is what a Snapshotter cutover (dns) served before the cutover, restored exactly by a
	// rollback, even one run after a crash.
	Snapshot *CutoverSnapshot `json:"snapshot,omitempty"`
}

// ErrorEntry is an error a command met while working on the rollout.
type ErrorEntry struct {
	At      time.Time `json:"at"`
	State   State     `json:"state"`
	Message string    `json:"message"`
}

// Duration is a time.Duration that reads and writes as "15m0s" in JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// At returns when the rollout entered s, or the zero time.
func (r *Record) At(s State) time.Time {
	for i := len(r.Transitions) - 1; i >= 0; i-- {
		if r.Transitions[i].State == s {
			return r.Transitions[i].At
		}
	}
	return time.Time{}
}

// Version is the store version the record was read or written at.
func (r *Record) Version() uint64 { return r.version }

func (r *Record) clone() *Record {
	b, _ := json.Marshal(r)
	var c Record
	_ = json.Unmarshal(b, &c)
	c.version = r.version
	return &c
}

// loadRecords reads every record of a role, oldest first.
func loadRecords(ctx context.Context, st store.Store, role string) ([]*Record, error) {
	items, err := st.List(ctx, roleKeyPrefix(role))
	if err != nil {
		return nil, fmt.Errorf("rollout: role %q: listing rollouts: %w", role, err)
	}
	return decodeRecords(items)
}

func decodeRecords(items []store.Item) ([]*Record, error) {
	out := make([]*Record, 0, len(items))
	for _, it := range items {
		var r Record
		if err := json.Unmarshal(it.Value, &r); err != nil {
			return nil, fmt.Errorf("rollout: record %q is not JSON: %w", it.Key, err)
		}
		r.version = it.Version
		out = append(out, &r)
	}
	slices.SortFunc(out, func(a, b *Record) int {
		if c := strings.Compare(a.Role, b.Role); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	return out, nil
}

// save writes r with compare-and-swap on its version. A conflict means another drover changed the
// record, which the role lock should have prevented: the caller stops.
func saveRecord(ctx context.Context, st store.Store, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: role %q: encoding rollout %s: %w", r.Role, r.ID, err)
	}
	v, err := st.Put(ctx, rolloutKey(r.Role, r.Seq), b, r.version)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("rollout: role %q: rollout %s changed under this drover (another one working on it?): %w", r.Role, r.ID, err)
	}
	if err != nil {
		return fmt.Errorf("rollout: role %q: saving rollout %s (%s): %w", r.Role, r.ID, r.State, err)
	}
	r.version = v
	return nil
}

// refs turns instances into record references, by slot.
func refs(ins []compute.Instance) []InstanceRef {
	out := make([]InstanceRef, 0, len(ins))
	for _, in := range ins {
		ref := InstanceRef{ID: in.ID, Name: in.Name, Slot: slotOf(in)}
		if in.Address.IsValid() {
			ref.Address = in.Address.String()
		}
		out = append(out, ref)
	}
	return out
}

func ids(ins []compute.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	return out
}
