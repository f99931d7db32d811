// Package keylock serializes work on one key within a process, while work on other keys goes on:
// two ReplaceSets of one DNS record set through an API without conditional writes must not
// interleave their reads and writes, nor two Publishes of one image identity, nor two moves of one
// Elastic IP.
package keylock

import (
	"context"
	"sync"
)

// Locks is a set of per-key locks. The zero value is ready to use; it is safe for concurrent use and
// keeps an entry only while a key is held or waited for.
type Locks[K comparable] struct {
	mu sync.Mutex
	m  map[K]*entry
}

type entry struct {
	ch    chan struct{}
	users int
}

// Lock waits until k is free, then holds it until the returned function is called. Waiting honours
// ctx: when ctx ends first, nothing is held and the error is ctx.Err().
func (l *Locks[K]) Lock(ctx context.Context, k K) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[K]*entry{}
	}
	e := l.m[k]
	if e == nil {
		e = &entry{ch: make(chan struct{}, 1)}
		l.m[k] = e
	}
	e.users++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		e.users--
		if e.users == 0 {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
