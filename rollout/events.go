package rollout

import (
	"fmt"
	"time"
)

// Event is progress for the CLI: a transition, or a step of one (a launch, a probe, a cutover).
type Event struct {
	Time    time.Time     `json:"time"`
	Role    string        `json:"role"`
	Rollout string        `json:"rollout,omitempty"`
	Command string        `json:"command"`         // start, promote, rollback, abort, tick
	Kind    string        `json:"kind"`            // transition or step
	From    State         `json:"from,omitempty"`  // transitions: the state left
	State   State         `json:"state,omitempty"` // transitions: the state entered
	Step    string        `json:"step,omitempty"`  // steps: lock, launch, health, cutover, watch, destroy, marks, ...
	Message string        `json:"message"`         // one line for humans
	Elapsed time.Duration `json:"elapsed_ns"`      // since the command began
}

// String is the event as one line of text.
func (e Event) String() string {
	id := e.Rollout
	if id == "" {
		id = e.Role
	}
	if e.Kind == "transition" {
		return fmt.Sprintf("[%6.2fs] %s: %s -> %s: %s", e.Elapsed.Seconds(), id, orStart(e.From), e.State, e.Message)
	}
	return fmt.Sprintf("[%6.2fs] %s: %s: %s", e.Elapsed.Seconds(), id, e.Step, e.Message)
}

func orStart(s State) State {
	if s == "" {
		return "(new)"
	}
	return s
}

func (s *session) emit(e Event) {
	e.Time, e.Role, e.Command, e.Elapsed = time.Now(), s.role.Name, s.cmd, time.Since(s.started)
	if s.c.opts.Events != nil {
		s.c.opts.Events(e)
	}
}

// transitioned reports a persisted transition.
func (s *session) transitioned(r *Record, from State, note string) {
	s.c.log.Info("rollout transition", "role", r.Role, "rollout", r.ID, "from", string(from), "to", string(r.State), "note", note)
	s.emit(Event{Rollout: r.ID, Kind: "transition", From: from, State: r.State, Message: note})
}

// step reports a side effect or a decision. r may be nil.
func (s *session) step(rollout, step, msg string) {
	s.c.log.Info("rollout step", "role", s.role.Name, "rollout", rollout, "step", step, "msg", msg)
	s.emit(Event{Rollout: rollout, Kind: "step", Step: step, Message: msg})
}

// human rounds a duration for messages: to seconds, to milliseconds below one, to microseconds
// below a millisecond.
func human(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond && d > -time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second && d > -time.Second:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
