package awseip

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/keylock"
	"github.com/drover-dev/drover/plugins/ip"
)

var (
	_ ip.Provider  = (*Provider)(nil)
	_ ip.Addresser = (*Provider)(nil)
)

// Provider moves Elastic IPs of one account and region between EC2 instances.
//
// An address is known by its public IP (DescribeAddresses, filter public-ip), so the provider
// can move any Elastic IP of the account; the block's allocation_id names the one the rollout
// moves (Address). The platform is the only state: Holder reports what DescribeAddresses says.
// Assign is AssociateAddress with AllowReassociation, one call that takes the address from its
// holder, then a wait until DescribeAddresses shows the new holder (EC2 is eventually
// consistent). Assigns of one address are serialized within the process; across processes EC2
// applies associations one at a time, and the last one wins. Safe for concurrent use.
type Provider struct {
	client *ec2.Client
	addr   netip.Addr
	poll   time.Duration

	locks keylock.Locks[netip.Addr] // one Assign of an address at a time in this process
}

// Option adjusts a Provider; tests use them to point the real client at a fake.
type Option func(*options)

type options struct {
	creds    aws.CredentialsProvider
	endpoint string
	client   *http.Client
	poll     time.Duration
	attempts int
	backoff  time.Duration
}

// WithCredentials uses creds instead of the SDK's default chain.
func WithCredentials(creds aws.CredentialsProvider) Option {
	return func(o *options) { o.creds = creds }
}

// WithEndpoint sends EC2 requests to this base URL (AWS_ENDPOINT_URL_EC2 does the same).
func WithEndpoint(url string) Option { return func(o *options) { o.endpoint = url } }

// WithHTTPClient sets the HTTP client of every request.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithPollInterval sets how often Assign asks whether the association shows (default 1 s).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithRetry sets the tries of one request (the first included) and the longest backoff.
func WithRetry(attempts int, maxBackoff time.Duration) Option {
	return func(o *options) { o.attempts, o.backoff = attempts, maxBackoff }
}

// regioner is what the aws compute provider tells about itself: its region, the default of the
// block's.
type regioner interface{ Region() string }

// New returns the provider of cfg, whose address moves between the instances of on (an aws
// compute provider). It looks the allocation up, so a wrong allocation_id fails here.
func New(ctx context.Context, cfg *Config, on compute.Provider, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("awseip: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("awseip: %w", err)
	}
	region := cfg.Region
	if r, ok := on.(regioner); ok && region == "" {
		region = r.Region()
	}
	if region == "" {
		return nil, errors.New("awseip: no region: set the block's region or AWS_REGION")
	}
	o := options{poll: time.Second, attempts: 10, backoff: 20 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	var awsCfg aws.Config
	if o.creds != nil {
		awsCfg = aws.Config{Region: region, Credentials: o.creds}
	} else {
		load := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
		if cfg.Profile != "" {
			load = append(load, awsconfig.WithSharedConfigProfile(cfg.Profile))
		}
		var err error
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx, load...); err != nil {
			return nil, fmt.Errorf("awseip: loading AWS configuration (profile %q): %w", cfg.Profile, err)
		}
	}
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) {
				so.MaxAttempts, so.MaxBackoff, so.RateLimiter = o.attempts, o.backoff, ratelimit.None
			})
		})
	}
	awsCfg.HTTPClient = o.client
	if o.client == nil {
		awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(time.Minute)
	}
	client := ec2.NewFromConfig(awsCfg, func(eo *ec2.Options) {
		if o.endpoint != "" {
			eo.BaseEndpoint = aws.String(o.endpoint)
		}
	})
	p := &Provider{client: client, poll: o.poll}
	out, err := client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{cfg.AllocationID}})
	if err != nil {
		return nil, fmt.Errorf("awseip: looking up Elastic IP %s in %s: %w", cfg.AllocationID, region, err)
	}
	if len(out.Addresses) != 1 {
		return nil, fmt.Errorf("awseip: Elastic IP %s: %d addresses in %s, want 1", cfg.AllocationID, len(out.Addresses), region)
	}
	if p.addr, err = netip.ParseAddr(aws.ToString(out.Addresses[0].PublicIp)); err != nil {
		return nil, fmt.Errorf("awseip: Elastic IP %s has public IP %q: %w", cfg.AllocationID, aws.ToString(out.Addresses[0].PublicIp), err)
	}
	return p, nil
}

// Address is the block's Elastic IP.
func (p *Provider) Address() netip.Addr { return p.addr }

// Holder implements ip.Provider: the instance DescribeAddresses says holds addr, "" when none
// does, or when the one it names is terminated (EC2 disassociates it soon after).
func (p *Provider) Holder(ctx context.Context, addr netip.Addr) (string, error) {
	a, err := p.lookup(ctx, addr)
	if err != nil {
		return "", err
	}
	id := aws.ToString(a.InstanceId)
	if id == "" {
		return "", nil
	}
	alive, err := p.alive(ctx, id)
	if err != nil {
		return "", fmt.Errorf("awseip: holder of %v: %w", addr, err)
	}
	if !alive {
		return "", nil
	}
	return id, nil
}

// Assign implements ip.Provider. An instance that does not exist or is terminated is refused
// before anything changes (ip.ErrUnknownInstance). When ctx ends during the wait, the association
// may have happened or not: Holder says which, and a retry finishes it.
func (p *Provider) Assign(ctx context.Context, addr netip.Addr, instanceID string) error {
	if instanceID == "" {
		return errors.New("awseip: assign: empty instance ID")
	}
	unlock, err := p.locks.Lock(ctx, addr)
	if err != nil {
		return fmt.Errorf("awseip: assign %v: %w", addr, err)
	}
	defer unlock()
	a, err := p.lookup(ctx, addr)
	if err != nil {
		return err
	}
	if aws.ToString(a.InstanceId) == instanceID {
		return nil
	}
	alive, err := p.alive(ctx, instanceID)
	if err != nil {
		return fmt.Errorf("awseip: assign %v: %w", addr, err)
	}
	if !alive {
		return fmt.Errorf("awseip: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	}
	_, err = p.client.AssociateAddress(ctx, &ec2.AssociateAddressInput{
		AllocationId:       a.AllocationId,
		InstanceId:         aws.String(instanceID),
		AllowReassociation: aws.Bool(true),
	})
	if code := errorCode(err); code == "InvalidInstanceID.NotFound" || code == "InvalidInstanceID.Malformed" {
		return fmt.Errorf("awseip: assign %v to %q: %w", addr, instanceID, ip.ErrUnknownInstance)
	} else if err != nil {
		return fmt.Errorf("awseip: associating %v (%s) with %s: %w", addr, aws.ToString(a.AllocationId), instanceID, err)
	}
	for {
		a, err := p.lookup(ctx, addr)
		if err != nil {
			return err
		}
		if aws.ToString(a.InstanceId) == instanceID {
			return nil
		}
		if err := sleep(ctx, p.poll); err != nil {
			return fmt.Errorf("awseip: waiting for %v to show on %s: %w", addr, instanceID, err)
		}
	}
}

// lookup is the account's Elastic IP addr, as DescribeAddresses reports it now.
func (p *Provider) lookup(ctx context.Context, addr netip.Addr) (types.Address, error) {
	if err := ctx.Err(); err != nil {
		return types.Address{}, fmt.Errorf("awseip: %w", err)
	}
	if !addr.IsValid() {
		return types.Address{}, errors.New("awseip: no address given")
	}
	out, err := p.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{
		Filters: []types.Filter{{Name: aws.String("public-ip"), Values: []string{addr.String()}}},
	})
	if err != nil {
		return types.Address{}, fmt.Errorf("awseip: looking up %v: %w", addr, err)
	}
	if len(out.Addresses) == 0 || out.Addresses[0].AllocationId == nil {
		return types.Address{}, fmt.Errorf("awseip: %v is not an Elastic IP of this account", addr)
	}
	return out.Addresses[0], nil
}

// alive reports whether the instance exists and is not terminated.
func (p *Provider) alive(ctx context.Context, id string) (bool, error) {
	out, err := p.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code := errorCode(err); code == "InvalidInstanceID.NotFound" || code == "InvalidInstanceID.Malformed" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describing %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id && in.State != nil {
				s := in.State.Name
				return s != types.InstanceStateNameTerminated && s != types.InstanceStateNameShuttingDown, nil
			}
		}
	}
	return false, nil
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
