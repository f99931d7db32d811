package aws

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Option adjusts a Provider; tests use them to point the real clients at a fake.
type Option func(*options)

type options struct {
	creds       aws.CredentialsProvider
	ec2Endpoint string
	ebsEndpoint string
	client      *http.Client
	timeout     time.Duration
	attempts    int
	maxBackoff  time.Duration
	poll        time.Duration
	workers     int
}

func defaultOptions() options {
	return options{timeout: DefaultRequestTimeout, attempts: 10, maxBackoff: 20 * time.Second, poll: 2 * time.Second, workers: 16}
}

// DefaultRequestTimeout bounds each API request of the default HTTP client (connect, send, the
// whole answer): an API that accepts a connection and never answers fails that attempt, and the
// retryer decides what next. Waits made of many requests are bounded by their ctx.
const DefaultRequestTimeout = 60 * time.Second

// WithCredentials uses creds instead of the SDK's default chain (which then is not loaded at all).
func WithCredentials(creds aws.CredentialsProvider) Option {
	return func(o *options) { o.creds = creds }
}

// WithEndpoints sends EC2 and EBS requests to these base URLs instead of the region's (an empty
// one keeps the SDK's resolution, AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_EBS included).
func WithEndpoints(ec2URL, ebsURL string) Option {
	return func(o *options) { o.ec2Endpoint, o.ebsEndpoint = ec2URL, ebsURL }
}

// WithHTTPClient sets the HTTP client of every request.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithRetry sets how many times one request is tried (the first included) and the longest
// backoff between tries (default 10 tries, up to 20 s apart).
func WithRetry(attempts int, maxBackoff time.Duration) Option {
	return func(o *options) { o.attempts, o.maxBackoff = attempts, maxBackoff }
}

// WithPollInterval sets how often waits (instance running or stopped, snapshot completed, address
// associated) ask again (default 2 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithUploadWorkers sets how many PutSnapshotBlock requests a Publish has in flight (default 16).
func WithUploadWorkers(n int) Option { return func(o *options) { o.workers = n } }

// clients are the two API clients a Provider uses.
type clients struct {
	ec2 *ec2.Client
	ebs *ebs.Client
}

// newClients loads the SDK's configuration (credentials chain, profile, endpoint variables) unless
// creds were given, and makes both clients. Both retry what the SDK's standard retryer retries
// (throttling codes such as RequestLimitExceeded, ThrottlingException and
// RequestThrottledException, 5xx, transport errors), with jittered exponential backoff; the retry
// quota is off, so a burst of failures does not stop retries, only the attempts bound them.
//
// EC2 requests use the adaptive mode on top, a client-side rate that backs off when EC2
// throttles the account (RequestLimitExceeded), as AWS advises for EC2's per-account limits. The
// EBS client does not: a publish's block uploads are already bounded by its workers, and the
// adaptive rate, which starts low, stalled a 60-block upload with two throttled blocks for 5 s
// in the fake (0.2 s with backoff alone).
func newClients(ctx context.Context, region, profile string, o options) (clients, error) {
	if o.attempts < 1 || o.maxBackoff <= 0 || o.timeout <= 0 || o.poll <= 0 || o.workers < 1 {
		return clients{}, fmt.Errorf("aws: options %+v: want attempts, workers >= 1 and positive durations", o)
	}
	var cfg aws.Config
	if o.creds != nil {
		cfg = aws.Config{Region: region, Credentials: o.creds}
	} else {
		load := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
		if profile != "" {
			load = append(load, awsconfig.WithSharedConfigProfile(profile))
		}
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx, load...); err != nil {
			return clients{}, fmt.Errorf("aws: loading AWS configuration (profile %q): %w", profile, err)
		}
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) {
				so.MaxAttempts = o.attempts
				so.MaxBackoff = o.maxBackoff
				so.RateLimiter = ratelimit.None
			})
		})
	}
	if o.client != nil {
		cfg.HTTPClient = o.client
	} else {
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(o.timeout)
	}
	return clients{
		ec2: ec2.NewFromConfig(cfg, func(eo *ec2.Options) {
			if o.ec2Endpoint != "" {
				eo.BaseEndpoint = aws.String(o.ec2Endpoint)
			}
		}),
		ebs: ebs.NewFromConfig(cfg, func(bo *ebs.Options) {
			bo.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.attempts
				so.MaxBackoff = o.maxBackoff
				so.RateLimiter = ratelimit.None
			})
			if o.ebsEndpoint != "" {
				bo.BaseEndpoint = aws.String(o.ebsEndpoint)
			}
		}),
	}, nil
}
