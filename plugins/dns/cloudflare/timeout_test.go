package cloudflare_test

import (
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/internal/faults"
)

// TestStalledAPIFailsWithinTheRequestTimeout: an API that accepts the connection and never answers
// fails New (and so every call) within its retries of the request timeout, never hangs.
func TestStalledAPIFailsWithinTheRequestTimeout(t *testing.T) {
	cfg := &cloudflare.Config{Zone: zoneName + ".", APIURL: faults.BlackHole(t), Token: token}
	start := time.Now()
	_, err := cloudflare.New(t.Context(), cfg, cloudflare.WithRetry(fastRetry()), cloudflare.WithRequestTimeout(100*time.Millisecond))
	if err == nil {
		t.Fatal("New against a stalled API succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("New gave up after %v, want within the attempts' request timeouts", took)
	}
	if _, err := cloudflare.New(t.Context(), cfg, cloudflare.WithRequestTimeout(0)); err == nil {
		t.Error("a request timeout of 0 is accepted")
	}
}
