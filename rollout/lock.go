package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// LockedError is returned when another drover holds a role's lock. It wraps store.ErrHeld.
type LockedError struct {
	Role  string
	Lease store.Lease // the holder: Owner, Acquired, Expires
	Now   time.Time
	// Waited is how long this command waited for the lock (Options.LockWait) before giving up; 0
	// when it did not wait.
	Waited time.Duration
}

func (e *LockedError) Error() string {
	if e.Waited > 0 {
		return fmt.Sprintf("rollout: role %q is still locked by %s after waiting %s, held for %s (the lock expires in %s unless renewed)",
			e.Role, e.Lease.Owner, human(e.Waited), human(e.Age()), human(e.Lease.Expires.Sub(e.Now)))
	}
	return fmt.Sprintf("rollout: role %q is locked by %s, held for %s (the lock expires in %s unless renewed): wait for that drover to finish",
		e.Role, e.Lease.Owner, human(e.Age()), human(e.Lease.Expires.Sub(e.Now)))
}

// Age is how long the holder has held the lock.
func (e *LockedError) Age() time.Duration { return e.Now.Sub(e.Lease.Acquired) }

// Unwrap returns store.ErrHeld.
func (e *LockedError) Unwrap() error { return store.ErrHeld }

var errLockLost = errors.New("rollout: the role lock was lost (taken over after it expired); stopped")

// DefaultOwner is "user@host pid N", how locks and records name this process.
func DefaultOwner() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

var ownerPattern = regexp.MustCompile(`^[^@]*@(\S+) pid (\d+)$`)

// deadLocalOwner reports whether owner names a process of this host that no longer runs: its lock
// can be taken over at once instead of after it expires (a drover killed with -9, run again).
func deadLocalOwner(owner, self string) bool {
	m := ownerPattern.FindStringSubmatch(owner)
	host, _ := os.Hostname()
	if m == nil || m[1] != host || owner == self {
		return false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// roleLock is a held role lease, renewed in the background until released.
type roleLock struct {
	st     store.Store
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu    sync.Mutex
	lease store.Lease
}

// How a command waiting for a role lock (Options.LockWait) polls the store, and how often it says
// who it is waiting for when the holder stays the same.
const (
	lockPollEvery   = 500 * time.Millisecond
	lockReportEvery = 10 * time.Second
)

// lock takes the role's lease (locks/role/<role>). A lease held by another live owner is refused
// with a *LockedError at once, or, with Options.LockWait, tried again until it is free or the wait
// is over, calling waiting (with the holder and the time left) at the first refusal, whenever the
// holder changes and every lockReportEvery. A lease held by a dead process of this host is taken
// over. A crashed holder on another machine stops renewing, so its lease expires after its TTL
// (the etcd store: its etcd lease runs out) and a waiting command then takes it. The returned
// context is cancelled if the lease is lost while working.
func (c *Controller) lock(ctx context.Context, role string, waiting func(holder store.Lease, left time.Duration)) (*roleLock, context.Context, error) {
	start := time.Now()
	var reported store.Lease
	var reportedAt time.Time
	for {
		lk, lctx, err := c.tryLock(ctx, role)
		var locked *LockedError
		if !errors.As(err, &locked) || c.opts.LockWait <= 0 {
			return lk, lctx, err
		}
		left := c.opts.LockWait - time.Since(start)
		if left <= 0 {
			locked.Waited = time.Since(start)
			return nil, nil, locked
		}
		h := locked.Lease
		if waiting != nil && (h.Owner != reported.Owner || h.Token != reported.Token || time.Since(reportedAt) >= lockReportEvery) {
			waiting(h, left)
			reported, reportedAt = h, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("rollout: role %q: waiting for the lock held by %s: %w", role, h.Owner, ctx.Err())
		case <-time.After(min(lockPollEvery, left)):
		}
	}
}

// tryLock is one attempt of lock.
func (c *Controller) tryLock(ctx context.Context, role string) (*roleLock, context.Context, error) {
	st, ttl := c.opts.Store, c.opts.LockTTL
	l, err := st.Acquire(ctx, lockName(role), c.owner, ttl)
	var held *store.HeldError
	if errors.As(err, &held) && deadLocalOwner(held.Lease.Owner, c.owner) {
		c.log.Warn("taking over the lock of a drover that is gone", "role", role, "holder", held.Lease.Owner)
		if rerr := st.Release(ctx, held.Lease); rerr == nil || errors.Is(rerr, store.ErrLost) {
			l, err = st.Acquire(ctx, lockName(role), c.owner, ttl)
		}
	}
	if errors.As(err, &held) {
		return nil, nil, &LockedError{Role: role, Lease: held.Lease, Now: time.Now()}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: role %q: taking the lock: %w", role, err)
	}
	lctx, cancel := context.WithCancelCause(ctx)
	lk := &roleLock{st: st, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), lease: l}
	go lk.renew(lctx, ttl)
	return lk, lctx, nil
}

func (lk *roleLock) renew(ctx context.Context, ttl time.Duration) {
	defer close(lk.done)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-lk.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lk.mu.Lock()
		l, err := lk.st.Renew(ctx, lk.lease, ttl)
		if err == nil {
			lk.lease = l
		}
		lk.mu.Unlock()
		if errors.Is(err, store.ErrLost) {
			lk.cancel(errLockLost)
			return
		}
	}
}

// abandon stops renewing without releasing: what a killed process leaves.
func (lk *roleLock) abandon() {
	lk.once.Do(func() { close(lk.stop) })
	<-lk.done
	lk.cancel(nil)
}

// release stops renewing and frees the lease.
func (lk *roleLock) release(ctx context.Context) error {
	lk.abandon()
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if err := lk.st.Release(ctx, lk.lease); err != nil && !errors.Is(err, store.ErrLost) {
		return fmt.Errorf("rollout: releasing lock %s: %w", lk.lease.Name, err)
	}
	return nil
}
