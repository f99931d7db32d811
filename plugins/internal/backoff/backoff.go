// Package backoff is the wait between retries that the API providers (cloudflare, route53, the
// DigitalOcean and Vultr ones) share, and a sleep that ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jittered returns the wait before try number attempt+1 (attempt >= 1): base doubled for each try
// after the first, up to ceiling, and of that a random duration between half and all of it.
func Jittered(base, ceiling time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d or until ctx ends, whichever is first; it returns ctx's error when ctx ended.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
