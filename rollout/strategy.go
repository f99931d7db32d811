package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// Strategy is how a rollout replaces what serves a role: bluegreen boots every green beside blue
// and moves traffic at once; raft deploys a Vault cluster's first node. The controller drives every
// rollout through its strategy: Admit before the record exists, Plan for drover plan, Advance one
// persisted step at a time, Rollback when asked.
//
// Strategies live in this package, one file each (their methods are given the session of the
// command that drives them), and are listed once, in builtinStrategies. A strategy holds no state of
// its own: everything it must remember goes into the record (its field of Progress), so a command
// killed at any point resumes where it stopped. Implementations are safe for concurrent use.
type Strategy interface {
	// Name is the deploy block's strategy value and the record's Strategy.
	Name() string
	// Validate says what a deploy block asks that the strategy cannot do, before any rollout
	// exists: drover validate reports each refusal at the deploy attribute it names.
	Validate(role *fleet.Role) []fleet.Refusal
	// Admit decides whether a new rollout of dep may start while serving (nil before the first
	// deploy) serves the role, and returns the strategy's progress for the new record. It reads
	// only what it is given.
	Admit(dep *fleet.Deploy, serving *Record) (Progress, error)
	// Plan adds the steps a rollout would take from its boot on; Plan asks no provider.
	Plan(p *planner)
	// Advance moves r one persisted step toward goal (its transition written before its side
	// effects, which are idempotent), or does what is due once r has reached goal; done reports
	// that r is at goal or at an end. A killed Advance is resumed by calling it again.
	Advance(ctx context.Context, s *session, r *Record, goal State) (done bool, err error)
	// Rollback undoes r, a rollout in flight that is not itself a rollback: traffic back where it
	// was, r's instances destroyed. Persisted before its side effects, like Advance.
	Rollback(ctx context.Context, s *session, r *Record) error
}

// Progress is a strategy's own state in a rollout record (JSON "progress"): one field per strategy
// that keeps any; bluegreen's is the record itself (blue, green, cutover).
type Progress struct {
	Raft    *RaftProgress    `json:"raft,omitempty"`
	Handoff *HandoffProgress `json:"handoff,omitempty"`
	AB      *ABProgress      `json:"ab,omitempty"`
}

// defaultStrategy is the strategy of a deploy block that names none (fleet's default too).
const defaultStrategy = "bluegreen"

// builtinStrategies are the strategies a controller drives, by name: a new strategy is its file
// plus its line here.
func builtinStrategies() map[string]Strategy {
	return map[string]Strategy{
		"bluegreen": bluegreen{},
		"raft":      raft{},
		"handoff":   handoff{},
		"ab":        ab{},
	}
}

// upcomingStrategies are strategies the fleet language names that are not built yet, with what they
// will do: a deploy block asking for one is refused (not available yet) instead of failing later.
func upcomingStrategies() map[string]string {
	return map[string]string{}
}

// strategyNames lists the strategies of m, the default first, then by name.
func strategyNames(m map[string]Strategy) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == defaultStrategy:
			return -1
		case b == defaultStrategy:
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// strategyOf returns the strategy a deploy block names ("" is bluegreen, the fleet's default).
func (c *Controller) strategyOf(dep *fleet.Deploy) (Strategy, error) {
	return lookupStrategy(c.strategies, dep.Strategy)
}

// strategyFor returns the strategy that drives r: the one its record names. Records written before
// the record named its real strategy say "bluegreen" or nothing, which drives them as before.
func (s *session) strategyFor(r *Record) (Strategy, error) {
	return lookupStrategy(s.c.strategies, r.Strategy)
}

func lookupStrategy(m map[string]Strategy, name string) (Strategy, error) {
	if name == "" {
		name = defaultStrategy
	}
	if st, ok := m[name]; ok {
		return st, nil
	}
	avail := strings.Join(strategyNames(m), ", ")
	if _, soon := upcomingStrategies()[name]; soon {
		return nil, fmt.Errorf("strategy %q is not available yet (available: %s)", name, avail)
	}
	return nil, fmt.Errorf("strategy %q is unknown (available: %s)", name, avail)
}

// serving is the rollout whose instances serve the role: a promoted one still keeping blue, else
// the live one.
func serving(active, live *Record) *Record {
	if active != nil && active.State == Promoted {
		return active
	}
	return live
}
