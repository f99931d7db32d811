// Package memory is an in-memory store.Store, for tests and dry runs. Its
// state lives as long as the Store value and is not shared across processes.
package memory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/internal/core"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store, safe for concurrent use. The zero
// value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	items   map[string]store.Item
	leases  map[string]core.Record
	version uint64 // the last version handed out
	closed  bool
}

// New returns an empty store.
func New() *Store {
	return &Store{
		items:  make(map[string]store.Item),
		leases: make(map[string]core.Record),
	}
}

// lock checks ctx, takes the mutex and checks that s is open. On success
// the caller must unlock s.mu.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	if err := core.CheckKey(key); err != nil {
		return store.Item{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Item{}, err
	}
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return store.Item{}, core.NotFound("key", key)
	}
	return clone(it), nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expectVersion uint64) (uint64, error) {
	if err := core.CheckKey(key); err != nil {
		return 0, err
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := core.CheckPut(key, expectVersion, s.items[key].Version); err != nil {
		return 0, err
	}
	s.version++
	s.items[key] = clone(store.Item{Key: key, Value: value, Version: s.version})
	return s.version, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expectVersion uint64) error {
	if err := core.CheckKey(key); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := core.CheckDelete(key, expectVersion, s.items[key].Version); err != nil {
		return err
	}
	delete(s.items, key)
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Item, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var items []store.Item
	for k, it := range s.items {
		if strings.HasPrefix(k, prefix) {
			items = append(items, clone(it))
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Key < items[j].Key })
	return items, nil
}

// Acquire implements store.Store.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (store.Lease, error) {
	if err := s.lock(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	rec, err := core.Acquire(s.leases[name], name, owner, ttl, time.Now())
	if err != nil {
		return store.Lease{}, err
	}
	s.leases[name] = rec
	return rec.Lease, nil
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.lock(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	rec, err := core.Renew(s.leases[l.Name], l, ttl, time.Now())
	if err != nil {
		return store.Lease{}, err
	}
	s.leases[l.Name] = rec
	return rec.Lease, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rec, err := core.Release(s.leases[l.Name], l)
	if err != nil {
		return err
	}
	s.leases[l.Name] = rec
	return nil
}

// Lease implements store.Store.
func (s *Store) Lease(ctx context.Context, name string) (store.Lease, error) {
	if err := s.lock(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	return core.Current(s.leases[name], name)
}

// Close implements store.Store. It drops nothing: a closed Store keeps its
// state but refuses further calls.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// clone returns it with a private copy of its value.
func clone(it store.Item) store.Item {
	it.Value = append([]byte{}, it.Value...)
	return it
}
