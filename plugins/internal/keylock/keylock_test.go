package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestOneHolderPerKey(t *testing.T) {
	var l Locks[string]
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		k := []string{"a", "b"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.Lock(context.Background(), k)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside[k]++
			if inside[k] > 1 {
				t.Errorf("two holders of %q", k)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[k]--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if len(l.m) != 0 {
		t.Errorf("%d entries left after every holder let go", len(l.m))
	}
}

func TestWaitHonoursContext(t *testing.T) {
	var l Locks[int]
	unlock, err := l.Lock(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.Lock(context.Background(), 2) // another key is not blocked
	if err != nil {
		t.Fatal(err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a held key: %v, want the deadline", err)
	}
	unlock()
	again, err := l.Lock(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	again()
	if len(l.m) != 0 {
		t.Errorf("%d entries left", len(l.m))
	}
}
