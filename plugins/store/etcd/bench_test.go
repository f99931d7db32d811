package etcd_test

import (
	"path/filepath"
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
