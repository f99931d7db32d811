package backoff

import (
	"testing"
	"time"
)

func TestJittered(t *testing.T) {
	const base, ceiling = 500 * time.Millisecond, 20 * time.Second
	for _, tc := range []struct {
		attempt int
		full    time.Duration // the wait before jitter
	}{
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{3, 2 * time.Second},
		{6, 16 * time.Second},
		{7, 20 * time.Second},
		{40, 20 * time.Second}, // no overflow: the doubling stops at ceiling
	} {
		for range 200 {
			if d := Jittered(base, ceiling, tc.attempt); d < tc.full/2 || d > tc.full {
				t.Fatalf("Jittered(%v, %v, %d) = %v, want between %v and %v", base, ceiling, tc.attempt, d, tc.full/2, tc.full)
			}
		}
	}
}
