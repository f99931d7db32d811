// Package core holds the rules every store implementation applies, as pure
// functions over the stored state, so that implementations agree on
// semantics and error text and only differ in how they persist records.
package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// CheckKey validates a key.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	return nil
}

// NotFound returns an error wrapping store.ErrNotFound naming what is
// missing, e.g. NotFound("key", "a/b").
func NotFound(what, name string) error {
	return fmt.Errorf("%w: %s %q", store.ErrNotFound, what, name)
}

// CheckPut checks a Put of key expecting version expect against the current
// version actual (0 if the key does not exist).
func CheckPut(key string, expect, actual uint64) error {
	if expect != actual {
		return &store.ConflictError{Op: "put", Key: key, Expected: expect, Actual: actual}
	}
	return nil
}

// CheckDelete checks a Delete of key expecting version expect (0: any)
// against the current version actual (0 if the key does not exist).
func CheckDelete(key string, expect, actual uint64) error {
	switch {
	case actual == 0:
		return NotFound("key", key)
	case expect != 0 && expect != actual:
		return &store.ConflictError{Op: "delete", Key: key, Expected: expect, Actual: actual}
	}
	return nil
}

// Record is the persisted state of one lease name. The zero Record means
// the name was never acquired.
type Record struct {
	// Lease is the latest acquisition; its Token is the highest token the
	// name has handed out, kept after release so tokens keep increasing.
	store.Lease
	Released bool
}

// held reports whether rec is held by someone at now.
func (rec Record) held(now time.Time) bool {
	return rec.Token != 0 && !rec.Released && !rec.Expired(now)
}

// Current returns the lease recorded in rec for name, or an error wrapping
// store.ErrNotFound if it was never acquired or was released.
func Current(rec Record, name string) (store.Lease, error) {
	if rec.Token == 0 || rec.Released {
		return store.Lease{}, NotFound("lease", name)
	}
	return rec.Lease, nil
}

// Acquire applies an acquisition of name by owner for ttl at now to rec and
// returns the new record.
func Acquire(rec Record, name, owner string, ttl time.Duration, now time.Time) (Record, error) {
	switch {
	case name == "":
		return rec, errors.New("store: empty lease name")
	case owner == "":
		return rec, fmt.Errorf("store: lease %q: empty owner", name)
	case ttl <= 0:
		return rec, fmt.Errorf("store: lease %q: ttl %s is not positive", name, ttl)
	}
	if rec.held(now) {
		if rec.Owner != owner {
			return rec, &store.HeldError{Lease: rec.Lease}
		}
		rec.Expires = now.Add(ttl)
		return rec, nil
	}
	return Record{Lease: store.Lease{
		Name:     name,
		Owner:    owner,
		Token:    rec.Token + 1,
		Acquired: now,
		Expires:  now.Add(ttl),
	}}, nil
}

// Renew applies a renewal of l for ttl at now to rec, the record of l.Name.
func Renew(rec Record, l store.Lease, ttl time.Duration, now time.Time) (Record, error) {
	if ttl <= 0 {
		return rec, fmt.Errorf("store: lease %q: ttl %s is not positive", l.Name, ttl)
	}
	if rec.Token != l.Token || l.Token == 0 || rec.Released {
		return rec, lost(rec, l)
	}
	rec.Expires = now.Add(ttl)
	return rec, nil
}

// Release applies a release of l to rec, the record of l.Name. Releasing
// an already released lease leaves rec as it is and returns nil.
func Release(rec Record, l store.Lease) (Record, error) {
	if rec.Token != l.Token || l.Token == 0 {
		return rec, lost(rec, l)
	}
	rec.Released = true
	return rec, nil
}

// lost explains why l is no longer held given rec, the record of its name.
func lost(rec Record, l store.Lease) error {
	var why string
	switch {
	case rec.Token == 0:
		why = "no such lease"
	case rec.Token == l.Token:
		why = "released"
	case rec.Released:
		why = fmt.Sprintf("superseded by token %d, since released", rec.Token)
	default:
		why = fmt.Sprintf("taken over by %s with token %d", rec.Owner, rec.Token)
	}
	return fmt.Errorf("%w: lease %q token %d: %s", store.ErrLost, l.Name, l.Token, why)
}
