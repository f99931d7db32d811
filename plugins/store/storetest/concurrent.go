package storetest

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drover-dev/drover/plugins/store"
)

// race runs fn in n goroutines released at once and returns how many
// returned nil; other errors than ErrConflict fail the test.
func race(t *testing.T, n int, fn func(i int) error) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ok    atomic.Int64
		errs  = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			err := fn(i)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrHeld):
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return int(ok.Load())
}

func testCreateRace(t *testing.T, s store.Store) {
	n := race(t, 8, func(i int) error {
		_, err := s.Put(ctx(t), "k", []byte(strconv.Itoa(i)), 0)
		return err
	})
	if n != 1 {
		t.Fatalf("%d concurrent creates succeeded, want 1", n)
	}
}

func testSameVersionRace(t *testing.T, s store.Store) {
	v := mustPut(t, s, "k", "start", 0)
	n := race(t, 8, func(i int) error {
		_, err := s.Put(ctx(t), "k", []byte(strconv.Itoa(i)), v)
		return err
	})
	if n != 1 {
		t.Fatalf("%d concurrent updates of version %d succeeded, want 1", n, v)
	}
}

// testNoLostUpdates increments a counter from many goroutines with
// read-modify-CAS loops: every increment must land exactly once.
func testNoLostUpdates(t *testing.T, s store.Store) {
	const workers, increments = 6, 5
	mustPut(t, s, "counter", "0", 0)
	var puts atomic.Int64
	race(t, workers, func(int) error {
		for done := 0; done < increments; {
			it, err := s.Get(ctx(t), "counter")
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(string(it.Value))
			if err != nil {
				return err
			}
			_, err = s.Put(ctx(t), "counter", []byte(strconv.Itoa(n+1)), it.Version)
			switch {
			case errors.Is(err, store.ErrConflict):
				continue
			case err != nil:
				return err
			}
			puts.Add(1)
			done++
		}
		return nil
	})
	it, err := s.Get(ctx(t), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(it.Value), strconv.Itoa(workers*increments); got != want {
		t.Errorf("counter = %s, want %s (lost updates)", got, want)
	}
	if got := puts.Load(); got != workers*increments {
		t.Errorf("%d puts succeeded, want %d", got, workers*increments)
	}
}
