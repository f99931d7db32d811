package health

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Observer hears about every probe: the target, the check, how many successes (gate) or failures
// (watch) in a row it has now, and the probe's error. It is called from several goroutines at once.
type Observer func(t Target, c Check, streak int, err error)

// Gate probes every target with every check until each pair has passed c.Healthy times in a row. A
// pair that has not by its c.Deadline fails the gate: Gate stops the other pairs and returns that
// failure (the first one, if several fail together). Gate has no side effect besides the probes, so
// it can be run again from scratch. It returns ctx's error when ctx ends first.
func Gate(ctx context.Context, checks []Check, targets []Target, obs Observer) error {
	return runPairs(ctx, checks, targets, func(ctx context.Context, c Check, t Target) error {
		return gateOne(ctx, c, t, obs)
	})
}

func gateOne(ctx context.Context, c Check, t Target, obs Observer) error {
	start := time.Now()
	deadline := start.Add(c.Deadline)
	streak, attempts := 0, 0
	var last error
	for {
		err := probe(ctx, c, t)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		attempts++
		if err == nil {
			streak++
		} else {
			streak, last = 0, err
		}
		if obs != nil {
			obs(t, c, streak, err)
		}
		if streak >= c.Healthy {
			return nil
		}
		if time.Now().Add(c.Interval).After(deadline) {
			msg := fmt.Sprintf("passed %d of %d times in a row before the deadline", streak, c.Healthy)
			if last != nil {
				msg = last.Error()
			}
			return newFailure(c, t, msg, attempts, time.Since(start), "deadline "+c.Deadline.String()+" passed")
		}
		if err := sleep(ctx, c.Interval); err != nil {
			return err
		}
	}
}

// Watch probes every target with every check every c.Interval for window. A pair that fails
// c.Healthy times in a row fails the watch: Watch stops the others and returns that failure. It
// returns nil when the window ends without one, and ctx's error when ctx ends first. A window of zero
// or less runs one round of probes.
func Watch(ctx context.Context, checks []Check, targets []Target, window time.Duration, obs Observer) error {
	end := time.Now().Add(window)
	return runPairs(ctx, checks, targets, func(ctx context.Context, c Check, t Target) error {
		start := time.Now()
		streak, attempts := 0, 0
		for {
			err := probe(ctx, c, t)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			attempts++
			if err == nil {
				streak = 0
			} else {
				streak++
			}
			if obs != nil {
				obs(t, c, streak, err)
			}
			if err != nil && streak >= c.Healthy {
				return newFailure(c, t, err.Error(), attempts, time.Since(start),
					fmt.Sprintf("failed %d times in a row during the watch", streak))
			}
			// At the window's end a target that is failing, but not yet c.Healthy times, is watched
			// until it recovers or reaches the threshold.
			if streak == 0 && !time.Now().Add(c.Interval).Before(end) {
				return nil
			}
			if err := sleep(ctx, c.Interval); err != nil {
				return err
			}
		}
	})
}

// runPairs runs fn for every (check, target) pair concurrently and returns the first failure,
// cancelling the others.
func runPairs(ctx context.Context, checks []Check, targets []Target, fn func(context.Context, Check, Target) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, t := range targets {
		for _, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(ctx, c, t); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}()
		}
	}
	wg.Wait()
	return first
}
