// Package store defines drover's state store: a versioned key/value store
// with compare-and-swap, plus named leases used as per-role locks.
//
// Rollouts persist their state machines as values and update them with
// compare-and-swap, so two controllers never overwrite each other. A
// controller holds the lease of a role for as long as it works on it and
// hands the lease's fencing token to whatever must reject a stale holder.
//
// Every implementation passes the contract suite in package storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/plugins/config"
)

// Sentinel errors. Implementations wrap them with the key, lease name and
// versions involved; test for them with errors.Is.
var (
	// ErrNotFound means the key or lease does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a compare-and-swap saw a version other than the
	// expected one. The concrete error is a *ConflictError.
	ErrConflict = errors.New("store: version conflict")
	// ErrHeld means a lease is held by another owner and has not expired.
	// The concrete error is a *HeldError.
	ErrHeld = errors.New("store: lease held")
	// ErrLost means a lease was taken over by a newer acquisition (its
	// fencing token is stale) or was released: the caller no longer holds it.
	ErrLost = errors.New("store: lease lost")
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("store: closed")
)

// Item is one versioned value.
type Item struct {
	Key   string
	Value []byte
	// Version is positive and unique within the store: every successful
	// Put yields a version greater than any the store handed out before,
	// so a key that is deleted and created again never reuses a version.
	Version uint64
}

// Lease is a named, expiring lock held by one owner.
type Lease struct {
	Name string
	// Owner identifies the holder for humans, e.g. "alice@host pid 123".
	Owner string
	// Token is the fencing token. It is positive and increases with every
	// new acquisition of the name; renewals keep it.
	Token uint64
	// Acquired is when this acquisition began; renewals keep it.
	Acquired time.Time
	// Expires is when the lease may be taken over by someone else.
	Expires time.Time
}

// Expired reports whether the lease is past its expiry at t.
func (l Lease) Expired(t time.Time) bool { return !t.Before(l.Expires) }

// Store is drover's state store.
//
// All methods are safe for concurrent use by multiple goroutines, and an
// implementation backed by shared storage is also safe across processes.
// Every method honours ctx: it returns an error wrapping ctx.Err() if ctx is
// done before the operation took effect. Each method is atomic: when it
// returns an error (cancellation included) either nothing changed or, for
// errors reported after the change was committed (only possible on I/O
// failure while closing), the whole change took effect; never a part of it.
// Callers recover from an uncertain outcome by reading back (Get, Lease).
type Store interface {
	// Get returns the item stored under key, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)

	// Put stores value under key if the key's current version is
	// expectVersion, where 0 means the key must not exist yet, and returns
	// the new version. On a mismatch it returns a *ConflictError
	// (errors.Is(err, ErrConflict)) and changes nothing. Put is not
	// idempotent by itself: retrying a Put whose outcome is unknown may
	// conflict with its own earlier success, which a Get reveals.
	Put(ctx context.Context, key string, value []byte, expectVersion uint64) (uint64, error)

	// Delete removes key if its current version is expectVersion; 0 deletes
	// any version. It returns an error wrapping ErrNotFound if the key does
	// not exist, which callers retrying a delete may treat as success, and
	// a *ConflictError on a version mismatch.
	Delete(ctx context.Context, key string, expectVersion uint64) error

	// List returns the items whose key starts with prefix, sorted by key.
	// An empty prefix lists everything. No match is not an error.
	List(ctx context.Context, prefix string) ([]Item, error)

	// Acquire takes the lease called name for owner for ttl. It succeeds
	// if the lease is free, released or expired (a new acquisition with a
	// greater Token), or already held by the same owner and not expired (a
	// renewal that keeps Token and Acquired). If another owner holds it and
	// it has not expired, Acquire returns a *HeldError carrying the current
	// lease (errors.Is(err, ErrHeld)).
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error)

	// Renew extends l to expire ttl from now and returns the updated lease.
	// It succeeds as long as nobody acquired the name since l was (even if
	// l has expired meanwhile); otherwise, or if l was released, it returns
	// an error wrapping ErrLost. Renew is idempotent.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)

	// Release frees l so that anyone may acquire it at once. Releasing a
	// lease that is already released returns nil; releasing a lease that
	// someone acquired since returns an error wrapping ErrLost and leaves
	// the newer holder alone.
	Release(ctx context.Context, l Lease) error

	// Lease returns the current holder of the lease called name, even if
	// it has expired (check Lease.Expired), or an error wrapping
	// ErrNotFound if the lease was never acquired or was released.
	Lease(ctx context.Context, name string) (Lease, error)

	// Close releases the store's resources. Leases stay held until they
	// expire or are released. Calling Close more than once returns nil;
	// other methods return an error wrapping ErrClosed afterwards.
	Close() error
}

// ConflictError is returned by a compare-and-swap that saw an unexpected
// version. It wraps ErrConflict.
type ConflictError struct {
	Op       string // "put" or "delete"
	Key      string
	Expected uint64 // the version the caller expected; 0 for "must not exist"
	Actual   uint64 // the version found; 0 if the key does not exist
}

func (e *ConflictError) Error() string {
	want := fmt.Sprintf("version %d", e.Expected)
	if e.Expected == 0 {
		want = "no such key"
	}
	have := fmt.Sprintf("version %d", e.Actual)
	if e.Actual == 0 {
		have = "no such key"
	}
	return fmt.Sprintf("store: version conflict: %s %q: expected %s, found %s", e.Op, e.Key, want, have)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// HeldError is returned by Acquire when another owner holds the lease. It
// wraps ErrHeld.
type HeldError struct {
	Lease Lease // the current holder
}

func (e *HeldError) Error() string {
	now := time.Now()
	return fmt.Sprintf("store: lease %q held by %s since %s (token %d, expires in %s)",
		e.Lease.Name, e.Lease.Owner, roundDuration(now.Sub(e.Lease.Acquired)),
		e.Lease.Token, roundDuration(e.Lease.Expires.Sub(now)))
}

// Unwrap returns ErrHeld.
func (e *HeldError) Unwrap() error { return ErrHeld }

// roundDuration rounds d for humans: to seconds, or milliseconds below one.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second && d > -time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// ErrBusy is wrapped by the error of a call that gave up waiting for the store while another
// process held it (the local store's file lock); the error names the holder where it can.
var ErrBusy = errors.New("the state store stayed locked by another process")

// Factory makes stores of one type; plugins/all lists one per type.
type Factory = config.Factory[Store]
