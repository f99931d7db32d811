// Package flock takes exclusive advisory file locks that wait with a context. The lab's providers
// (qemu launches, loopback moves) share it so two drover processes never act on one thing at once.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock takes an exclusive lock on path (created, with its directory, if missing), trying again every
// interval until it is free or ctx is done, and returns the function that releases it. flock cannot be
// interrupted by a context, hence the polling with LOCK_NB. Separate calls exclude each other within a
// process as well as across processes; a dead holder's lock is released by the kernel.
func Lock(ctx context.Context, path string, interval time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, context.Cause(ctx))
		case <-time.After(interval):
		}
	}
}
