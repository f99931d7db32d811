package rollout

import (
	"fmt"
	"slices"
)

// State is where a rollout is in the machine of DESIGN.md §5:
//
//	planned -> booting -> checking -> ready -> cutting-over -> draining -> promoted -> retired
//
// with aborted, rolled-back and failed as the other ends. The world each state stands for:
//
//	planned       the record exists and names the image; no instance yet
//	booting       green instances are being launched (Launch by token: rollout ID + slot)
//	checking      every green runs; the health gate is running
//	ready         every green passed the gate; traffic still goes to blue
//	cutting-over  the cutover target is being moved to green (what it pointed at before is recorded)
//	draining      traffic goes to green; the post-cutover watch runs; blue still runs
//	promoted      the watch passed; blue is kept until keep_old has passed
//	retired       blue is destroyed; green serves (the rollout is done)
//	aborted       green destroyed before any cutover; blue serves as before
//	rolled-back   traffic moved back to blue, green destroyed (strategy ab: the device went back to
//	              its committed slot, from its trial or after its commit)
//	failed        green failed its checks (or, on a first deploy, the watch) and was destroyed
type State string

// The states of a rollout.
const (
	Planned     State = "planned"
	Booting     State = "booting"
	Checking    State = "checking"
	Ready       State = "ready"
	CuttingOver State = "cutting-over"
	Draining    State = "draining"
	Promoted    State = "promoted"
	Retired     State = "retired"
	Aborted     State = "aborted"
	RolledBack  State = "rolled-back"
	Failed      State = "failed"
)

// States lists every state: the main line in order, then the other ends.
var States = []State{Planned, Booting, Checking, Ready, CuttingOver, Draining, Promoted, Retired, Aborted, RolledBack, Failed}

// transitions is the state machine: the states each state may move to.
var transitions = map[State][]State{
	Planned:     {Booting, Aborted, Failed},
	Booting:     {Checking, Aborted, Failed, RolledBack},
	Checking:    {Ready, Aborted, Failed, RolledBack},
	Ready:       {CuttingOver, Aborted},
	CuttingOver: {Draining, RolledBack, Failed},
	Draining:    {Promoted, RolledBack, Failed},
	Promoted:    {Retired, RolledBack},
}

// Terminal reports whether s is an end: no transition leaves it.
func (s State) Terminal() bool { return len(transitions[s]) == 0 }

// CutOver reports whether traffic may already go to the rollout's green instances.
func (s State) CutOver() bool {
	return s == CuttingOver || s == Draining || s == Promoted || s == Retired
}

// Valid reports whether s is a known state.
func (s State) Valid() bool { return slices.Contains(States, s) }

// CanMove reports whether the machine allows from -> to.
func CanMove(from, to State) bool { return slices.Contains(transitions[from], to) }

// rank orders the main line; the other ends rank after everything.
func (s State) rank() int {
	if i := slices.Index(States[:8], s); i >= 0 {
		return i
	}
	return len(States)
}

// ParseState parses a state name, as DROVER_TEST_CRASH_AFTER gives it.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", fmt.Errorf("rollout: unknown state %q (one of %v)", s, States)
	}
	return st, nil
}
