package etcd_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/etcd"
	"github.com/drover-dev/drover/plugins/store/local"
)

// Benchmarks of the operations a rollout makes, on etcd (a one-member cluster on loopback, started
// per benchmark) and on the local bbolt store (a file in a temporary directory). Run them with
//
//	go test -run '^$' -bench . -benchtime 2s -count 3 ./plugins/store/etcd
//
// bench/results.md has figures.

// benchStores runs fn on each store type.
func benchStores(b *testing.B, fn func(b *testing.B, s store.Store)) {
	b.Run("local", func(b *testing.B) {
		s, err := local.New(local.Config{Path: filepath.Join(b.TempDir(), "state.db")})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	b.Run("etcd", func(b *testing.B) {
		s, err := etcd.New(etcd.Config{Endpoints: []string{startEtcd(b)}, Prefix: "bench/"})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
}

func reportOps(b *testing.B, opsPerIteration int) {
	b.ReportMetric(float64(b.N*opsPerIteration)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkCAS: one compare-and-swap update of a key, expecting the version the last one returned.
func BenchmarkCAS(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		v, err := s.Put(ctx, "rollouts/web", []byte("state 0"), 0)
		if err != nil {
			b.Fatal(err)
		}
		value := make([]byte, 512) // about the size of a rollout's state
		b.ResetTimer()
		for b.Loop() {
			if v, err = s.Put(ctx, "rollouts/web", value, v); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, 1)
	})
}

// BenchmarkGet: one read of a key.
func BenchmarkGet(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		if _, err := s.Put(ctx, "rollouts/web", make([]byte, 512), 0); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Get(ctx, "rollouts/web"); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, 1)
	})
}

// BenchmarkLeaseRenew: one renewal of a held lease, what a lock holder does every ttl/3.
func BenchmarkLeaseRenew(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		l, err := s.Acquire(ctx, "locks/role/web", "bench", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if l, err = s.Renew(ctx, l, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, 1)
	})
}

// BenchmarkLeaseAcquireRelease: taking a free lease and releasing it, two operations, what a
// command that locks a role does once.
func BenchmarkLeaseAcquireRelease(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		b.ResetTimer()
		for b.Loop() {
			l, err := s.Acquire(ctx, "locks/role/web", "bench", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Release(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, 2)
	})
}

// BenchmarkCASContended: 4 writers update one key at once, each a read-modify-write (Get, then Put
// expecting the version read) retried on a conflict, as a shared catalog's published list is
// written when runners publish one image to several blocks at once. ops/s counts successful
// updates; conflicts/op is how many Puts lost the race per success.
func BenchmarkCASContended(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		if _, err := s.Put(ctx, "catalog/published/x", []byte("{}"), 0); err != nil {
			b.Fatal(err)
		}
		value := make([]byte, 512)
		var conflicts atomic.Int64
		b.SetParallelism(2) // 2 cores: 4 goroutines
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				for {
					it, err := s.Get(ctx, "catalog/published/x")
					if err != nil {
						b.Error(err)
						return
					}
					_, err = s.Put(ctx, "catalog/published/x", value, it.Version)
					if errors.Is(err, store.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						b.Error(err)
						return
					}
					break
				}
			}
		})
		reportOps(b, 1)
		b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
	})
}

// BenchmarkLeaseAcquireHeld: an Acquire refused because another owner holds the lease, what a
// command waiting for a role lock (--wait) does on every poll.
func BenchmarkLeaseAcquireHeld(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		if _, err := s.Acquire(ctx, "locks/role/web", "holder", time.Minute); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Acquire(ctx, "locks/role/web", "waiter", time.Minute); !errors.Is(err, store.ErrHeld) {
				b.Fatalf("Acquire of a held lease: %v, want ErrHeld", err)
			}
		}
		reportOps(b, 1)
	})
}

// BenchmarkListCatalog: listing 50 manifests of 4 KiB, what drover images list reads from a shared
// catalog. ops/s counts whole lists.
func BenchmarkListCatalog(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		ctx := b.Context()
		value := make([]byte, 4<<10)
		for i := range 50 {
			if _, err := s.Put(ctx, fmt.Sprintf("catalog/manifests/%064x", i), value, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for b.Loop() {
			items, err := s.List(ctx, "catalog/manifests/")
			if err != nil || len(items) != 50 {
				b.Fatalf("List: %d items, %v", len(items), err)
			}
		}
		reportOps(b, 1)
	})
}
