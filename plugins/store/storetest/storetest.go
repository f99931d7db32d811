// Package storetest is the contract suite every store.Store implementation
// passes:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// Run runs the contract suite. Every subtest calls open for a fresh, empty
// store and closes it when done (Close must be idempotent). Subtests run in
// parallel; the suite takes about a second, most of it waiting for leases
// to expire.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CAS/Create", testCreate},
		{"CAS/CreateExisting", testCreateExisting},
		{"CAS/Update", testUpdate},
		{"CAS/StaleVersion", testStaleVersion},
		{"CAS/UpdateMissing", testUpdateMissing},
		{"CAS/Delete", testDelete},
		{"CAS/DeleteStale", testDeleteStale},
		{"CAS/DeleteMissing", testDeleteMissing},
		{"CAS/VersionsNeverReused", testVersionsNeverReused},
		{"CAS/ValuesAreCopied", testValuesAreCopied},
		{"CAS/EmptyKey", testEmptyKey},
		{"Get/NotFound", testGetNotFound},
		{"List/Prefix", testListPrefix},
		{"List/NoMatch", testListNoMatch},
		{"Concurrent/CreateRace", testCreateRace},
		{"Concurrent/SameVersionRace", testSameVersionRace},
		{"Concurrent/NoLostUpdates", testNoLostUpdates},
		{"Lease/Acquire", testAcquire},
		{"Lease/NotFound", testLeaseNotFound},
		{"Lease/Held", testHeld},
		{"Lease/SameOwnerRenews", testSameOwnerRenews},
		{"Lease/Renew", testRenew},
		{"Lease/RenewExpiredNotTaken", testRenewExpiredNotTaken},
		{"Lease/Release", testRelease},
		{"Lease/ReleaseTwice", testReleaseTwice},
		{"Lease/ExpireAndTakeover", testExpireAndTakeover},
		{"Lease/FencingTokenMonotonic", testFencingTokenMonotonic},
		{"Lease/ConcurrentAcquire", testConcurrentAcquire},
		{"Lease/InvalidArguments", testLeaseInvalidArguments},
		{"Context/Canceled", testCanceled},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// ctx returns a context that ends with the test, bounded so that a
// deadlocked implementation fails instead of hanging.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, s store.Store, key, value string, expect uint64) uint64 {
	t.Helper()
	v, err := s.Put(ctx(t), key, []byte(value), expect)
	if err != nil {
		t.Fatalf("Put(%q, %q, %d): %v", key, value, expect, err)
	}
	if v == 0 {
		t.Fatalf("Put(%q, %q, %d) returned version 0", key, value, expect)
	}
	return v
}

func mustGet(t *testing.T, s store.Store, key, value string, version uint64) {
	t.Helper()
	it, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if it.Key != key || string(it.Value) != value || it.Version != version {
		t.Fatalf("Get(%q) = {%q, %q, %d}, want {%q, %q, %d}",
			key, it.Key, it.Value, it.Version, key, value, version)
	}
}

// wantConflict checks that err is a conflict naming key and both versions.
func wantConflict(t *testing.T, err error, op, key string, expect, actual uint64) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("%s %q expecting version %d: got %v, want ErrConflict", op, key, expect, err)
	}
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%s %q: %T is not a *store.ConflictError", op, key, err)
	}
	if ce.Op != op || ce.Key != key || ce.Expected != expect || ce.Actual != actual {
		t.Errorf("conflict = %+v, want op %s key %q expected %d actual %d", *ce, op, key, expect, actual)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "store: ") || !strings.Contains(msg, strconv.Quote(key)) {
		t.Errorf("conflict message %q does not start with \"store: \" and name key %q", msg, key)
	}
	for _, v := range []uint64{expect, actual} {
		if v != 0 && !strings.Contains(msg, strconv.FormatUint(v, 10)) {
			t.Errorf("conflict message %q does not name version %d", msg, v)
		}
	}
}

func wantNotFound(t *testing.T, err error, name string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), strconv.Quote(name)) {
		t.Errorf("message %q does not name %q", err, name)
	}
}

func testCreate(t *testing.T, s store.Store) {
	v := mustPut(t, s, "roles/web", "v1", 0)
	mustGet(t, s, "roles/web", "v1", v)
}

func testCreateExisting(t *testing.T, s store.Store) {
	v := mustPut(t, s, "k", "a", 0)
	_, err := s.Put(ctx(t), "k", []byte("b"), 0)
	wantConflict(t, err, "put", "k", 0, v)
	mustGet(t, s, "k", "a", v)
}

func testUpdate(t *testing.T, s store.Store) {
	v1 := mustPut(t, s, "k", "a", 0)
	v2 := mustPut(t, s, "k", "b", v1)
	if v2 <= v1 {
		t.Fatalf("update returned version %d, not greater than %d", v2, v1)
	}
	mustGet(t, s, "k", "b", v2)
}

func testStaleVersion(t *testing.T, s store.Store) {
	v1 := mustPut(t, s, "k", "a", 0)
	v2 := mustPut(t, s, "k", "b", v1)
	_, err := s.Put(ctx(t), "k", []byte("c"), v1)
	wantConflict(t, err, "put", "k", v1, v2)
	mustGet(t, s, "k", "b", v2)
}

func testUpdateMissing(t *testing.T, s store.Store) {
	_, err := s.Put(ctx(t), "k", []byte("a"), 7)
	wantConflict(t, err, "put", "k", 7, 0)
	_, err = s.Get(ctx(t), "k")
	wantNotFound(t, err, "k")
}

func testDelete(t *testing.T, s store.Store) {
	v := mustPut(t, s, "k", "a", 0)
	if err := s.Delete(ctx(t), "k", v); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(t), "k")
	wantNotFound(t, err, "k")

	mustPut(t, s, "k", "b", 0)
	if err := s.Delete(ctx(t), "k", 0); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	_, err = s.Get(ctx(t), "k")
	wantNotFound(t, err, "k")
}

func testDeleteStale(t *testing.T, s store.Store) {
	v1 := mustPut(t, s, "k", "a", 0)
	v2 := mustPut(t, s, "k", "b", v1)
	wantConflict(t, s.Delete(ctx(t), "k", v1), "delete", "k", v1, v2)
	mustGet(t, s, "k", "b", v2)
}

func testDeleteMissing(t *testing.T, s store.Store) {
	wantNotFound(t, s.Delete(ctx(t), "k", 0), "k")
	wantNotFound(t, s.Delete(ctx(t), "k", 3), "k")
}

func testVersionsNeverReused(t *testing.T, s store.Store) {
	v1 := mustPut(t, s, "k", "a", 0)
	other := mustPut(t, s, "other", "x", 0)
	if err := s.Delete(ctx(t), "k", v1); err != nil {
		t.Fatal(err)
	}
	v2 := mustPut(t, s, "k", "b", 0)
	if v2 <= v1 || v2 <= other {
		t.Fatalf("re-created key got version %d, want greater than %d and %d", v2, v1, other)
	}
	_, err := s.Put(ctx(t), "k", []byte("c"), v1)
	wantConflict(t, err, "put", "k", v1, v2)
}

func testValuesAreCopied(t *testing.T, s store.Store) {
	buf := []byte("abc")
	v, err := s.Put(ctx(t), "k", buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	it, err := s.Get(ctx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	it.Value[1] = 'Y'
	mustGet(t, s, "k", "abc", v)

	if _, err := s.Put(ctx(t), "empty", nil, 0); err != nil {
		t.Fatalf("Put of an empty value: %v", err)
	}
	it, err = s.Get(ctx(t), "empty")
	if err != nil || len(it.Value) != 0 {
		t.Fatalf("Get of an empty value = %q, %v", it.Value, err)
	}
}

func testEmptyKey(t *testing.T, s store.Store) {
	if _, err := s.Put(ctx(t), "", []byte("a"), 0); err == nil {
		t.Error("Put with an empty key succeeded")
	}
	if _, err := s.Get(ctx(t), ""); err == nil {
		t.Error("Get with an empty key succeeded")
	}
	if err := s.Delete(ctx(t), "", 0); err == nil {
		t.Error("Delete with an empty key succeeded")
	}
}

func testGetNotFound(t *testing.T, s store.Store) {
	_, err := s.Get(ctx(t), "nope")
	wantNotFound(t, err, "nope")
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("message %q lacks the \"store: \" prefix", err)
	}
}

func testListPrefix(t *testing.T, s store.Store) {
	want := map[string]uint64{}
	for _, k := range []string{"roll/web/2", "roll/db/1", "roll/web/1", "roll/webx", "rollout", "a"} {
		want[k] = mustPut(t, s, k, "val-"+k, 0)
	}
	check := func(prefix string, keys ...string) {
		t.Helper()
		items, err := s.List(ctx(t), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Key)
			if string(it.Value) != "val-"+it.Key || it.Version != want[it.Key] {
				t.Errorf("List(%q) item %q = {%q, %d}, want {%q, %d}",
					prefix, it.Key, it.Value, it.Version, "val-"+it.Key, want[it.Key])
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(keys) {
			t.Errorf("List(%q) keys = %q, want %q", prefix, got, keys)
		}
	}
	check("roll/web/", "roll/web/1", "roll/web/2")
	check("roll/", "roll/db/1", "roll/web/1", "roll/web/2", "roll/webx")
	check("", "a", "roll/db/1", "roll/web/1", "roll/web/2", "roll/webx", "rollout")
}

func testListNoMatch(t *testing.T, s store.Store) {
	mustPut(t, s, "a", "x", 0)
	items, err := s.List(ctx(t), "b")
	if err != nil || len(items) != 0 {
		t.Fatalf("List(%q) = %v, %v; want nothing", "b", items, err)
	}
}

func testCanceled(t *testing.T, s store.Store) {
	v := mustPut(t, s, "k", "a", 0)
	l, err := s.Acquire(ctx(t), "role/web", "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"Get":    func() error { _, err := s.Get(c, "k"); return err },
		"Put":    func() error { _, err := s.Put(c, "k", []byte("b"), v); return err },
		"Delete": func() error { return s.Delete(c, "k", v) },
		"List":   func() error { _, err := s.List(c, ""); return err },
		"Acquire": func() error {
			_, err := s.Acquire(c, "role/db", "alice", time.Minute)
			return err
		},
		"Renew":   func() error { _, err := s.Renew(c, l, time.Minute); return err },
		"Release": func() error { return s.Release(c, l) },
		"Lease":   func() error { _, err := s.Lease(c, "role/web"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", name, err)
		}
	}
	// Nothing changed.
	mustGet(t, s, "k", "a", v)
	got, err := s.Lease(ctx(t), "role/web")
	if err != nil || got.Token != l.Token || !got.Expires.Equal(l.Expires) {
		t.Errorf("lease after canceled calls = %+v, %v; want %+v", got, err, l)
	}
	if _, err := s.Lease(ctx(t), "role/db"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("canceled Acquire left a lease behind: %v", err)
	}
}

func testClose(t *testing.T, s store.Store) {
	mustPut(t, s, "k", "a", 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx(t), "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Acquire(ctx(t), "n", "alice", time.Minute); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Acquire after Close = %v, want ErrClosed", err)
	}
}
