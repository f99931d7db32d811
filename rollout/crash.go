package rollout

import (
	"errors"
	"fmt"
	"slices"
)

// CrashEnv is the environment variable the CLI reads for the crash hook of fault tests:
// DROVER_TEST_CRASH_AFTER=<state> stops drover right after a transition to that state is persisted;
// one of HandoffCrashPoints (VolumeOpCrashPoints, ABCrashPoints) stops it right after that step of a
// handoff (a volume operation, a device's slot update) is written to the record.
const CrashEnv = "DROVER_TEST_CRASH_AFTER"

// ErrCrashed is wrapped by the error a command returns when the crash hook stopped it.
var ErrCrashed = errors.New("rollout: stopped by the crash hook")

// CrashAfterFromEnv reads CrashEnv through getenv (os.Getenv in the CLI): "" when unset.
func CrashAfterFromEnv(getenv func(string) string) (State, error) {
	v := getenv(CrashEnv)
	if v == "" {
		return "", nil
	}
	if s := State(v); isStepCrashPoint(s) {
		return s, nil
	}
	s, err := ParseState(v)
	if err != nil {
		return "", fmt.Errorf("rollout: %s: %w", CrashEnv, err)
	}
	return s, nil
}

// crashPoint is called right after a transition to s (or a handoff step) is persisted.
func (c *Controller) crashPoint(s State) error {
	if c.opts.CrashAfter == "" || c.opts.CrashAfter != s {
		return nil
	}
	c.log.Warn("crash hook: stopping after a persisted transition", "state", s)
	if c.opts.CrashExit != nil {
		c.opts.CrashExit(s)
	}
	return fmt.Errorf("%w after %s", ErrCrashed, s)
}

// isStepCrashPoint reports whether s names a step, not a state, for the crash hook.
func isStepCrashPoint(s State) bool {
	return slices.Contains(HandoffCrashPoints, s) || slices.Contains(VolumeOpCrashPoints, s) || slices.Contains(ABCrashPoints, s)
}
