package qemu

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	lockfile "github.com/drover-dev/drover/internal/flock"
)

// lockPollInterval is how often a waiting lock is tried again. flock cannot
// be interrupted by a context, so waiters poll with LOCK_NB.
const lockPollInterval = 10 * time.Millisecond

// flock takes an exclusive flock on path, creating it, and returns the
// function that releases it. It waits until ctx is done. Locks taken by
// separate calls exclude each other within a process as well as across
// processes.
func flock(ctx context.Context, path string) (func(), error) {
	unlock, err := lockfile.Lock(ctx, path, lockPollInterval)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	return unlock, nil
}

// lock takes the lab's lock, which serializes changes to instances: two
// processes launching one token start one VM, and two launches never pick
// the same address.
func (p *Provider) lock(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qemu: %w", context.Cause(ctx))
	}
	return flock(ctx, filepath.Join(p.labDir(), "lock"))
}

// allocate picks the lowest address of the network from .2 up (.0 and .1
// are left alone, as is the last address) that no instance record holds and
// on which every port can be bound, so another lab or program on the same
// range is stepped around. avoid lists addresses a failed start showed busy.
func (p *Provider) allocate(ports []int, avoid map[netip.Addr]bool) (netip.Addr, error) {
	recs, err := p.records()
	if err != nil {
		return netip.Addr{}, err
	}
	used := make(map[netip.Addr]bool, len(recs)+len(avoid))
	for a := range avoid {
		used[a] = true
	}
	for _, r := range recs {
		used[r.Address] = true
	}
	a := p.network.Masked().Addr().Next().Next()
	for ; p.network.Contains(a.Next()); a = a.Next() {
		if !used[a] && bindable(a, ports) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("qemu: no free address left in %s", p.network)
}

// bindable reports whether every port can be listened on at addr now.
func bindable(addr netip.Addr, ports []int) bool {
	for _, port := range ports {
		l, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
