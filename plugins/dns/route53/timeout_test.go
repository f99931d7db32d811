package route53_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/drover-dev/drover/plugins/dns/internal/faults"
	"github.com/drover-dev/drover/plugins/dns/route53"
)

// TestStalledAPIFailsWithinTheRequestTimeout: an API that accepts the connection and never answers
// fails New (and so every call) within its retries of the request timeout, never hangs.
func TestStalledAPIFailsWithinTheRequestTimeout(t *testing.T) {
	cfg := &route53.Config{Zone: zoneName, Endpoint: faults.BlackHole(t)}
	start := time.Now()
	_, err := route53.New(t.Context(), cfg,
		route53.WithCredentials(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		route53.WithRetry(fastRetry()), route53.WithRequestTimeout(100*time.Millisecond))
	if err == nil {
		t.Fatal("New against a stalled API succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("New gave up after %v, want within the attempts' request timeouts", took)
	}
}
