package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/keylock"
)

var (
	_ compute.Provider  = (*Provider)(nil)
	_ compute.Stopper   = (*Provider)(nil)
	_ compute.Publisher = (*Provider)(nil)
)

// Provider launches EC2 instances in one region and publishes images there as AMIs.
//
// Everything it knows is on the platform: instances carry their labels as tags and their
// Spec.Token as RunInstances' ClientToken, AMIs and snapshots carry the image identity as a tag,
// so a new process (or another machine) finds what an earlier one made. It is safe for concurrent
// use, also across processes. Requests are retried by the SDK (adaptive mode: throttling such as
// RequestLimitExceeded, 5xx, transport errors).
type Provider struct {
	cfg     Config
	c       clients
	poll    time.Duration
	workers int

	// publishing serializes the Publishes of one identity within the process: they share one
	// upload, and the later ones find the image the first registered.
	publishing keylock.Locks[string]
}

// New returns the provider of cfg. It makes no request: a block is checked against the account
// when it is first used.
func New(ctx context.Context, cfg *Config, opts ...Option) (*Provider, error) {
	if cfg == nil {
		return nil, errors.New("aws: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	c, err := newClients(ctx, cfg.Region, cfg.Profile, o)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: *cfg, c: c, poll: o.poll, workers: o.workers}, nil
}

// Region is the region the provider works in.
func (p *Provider) Region() string { return p.cfg.Region }

// Tags drover puts on what it makes. A label k of an instance is the tag "drover:k".
const (
	labelTagPrefix = "drover:"
	tokenTag       = "drover-token"    // an instance's Spec.Token (its ClientToken may be a digest of it)
	portsTag       = "drover-ports"    // an instance's Spec.Ports, "80,443"
	identityTag    = "drover-identity" // the image identity of an AMI or snapshot
	roleTag        = "drover-role"     // the role an AMI or snapshot was built for
)

// Launch implements compute.Provider with RunInstances, whose ClientToken is derived from
// spec.Token (clientToken): EC2 itself makes a second launch of the token return the first
// instance, for at least 24 hours after it terminated. Before launching, Launch looks the token
// up (DescribeInstances, filter client-token), so a retry with another Spec returns the first
// instance instead of failing with IdempotentParameterMismatch.
//
// It returns once the instance runs. When EC2 refuses the launch (no capacity for the type in
// the zone, a quota, an unsupported combination), nothing was started and the error names the
// type and zone. An instance that goes from pending to terminated on its own (a volume limit, a
// bad image) is an error with EC2's state reason; it stays listed as Terminated until EC2
// forgets it. When ctx ends while waiting, the instance is left running with its token and tags,
// so a retry adopts it.
func (p *Provider) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	if err := spec.Validate(); err != nil {
		return compute.Instance{}, err
	}
	if err := ctx.Err(); err != nil {
		return compute.Instance{}, fmt.Errorf("aws: %w", err)
	}
	img := spec.Image.Published
	if img.ID == "" {
		return compute.Instance{}, fmt.Errorf("aws: spec %q has no published AMI (Image.Published): publish image %s to %s first", spec.Name, spec.Image.Identity, p.cfg.Region)
	}
	if img.Region != "" && img.Region != p.cfg.Region {
		return compute.Instance{}, fmt.Errorf("aws: spec %q: AMI %s is in %s, this block launches in %s", spec.Name, img.ID, img.Region, p.cfg.Region)
	}
	token := clientToken(spec.Token)
	if in, ok, err := p.byToken(ctx, token); err != nil || ok {
		return in, err
	}
	input, err := p.runInput(ctx, spec, token)
	if err != nil {
		return compute.Instance{}, err
	}
	out, err := p.c.ec2.RunInstances(ctx, input)
	switch {
	case err == nil && len(out.Instances) == 1:
	case err == nil:
		return compute.Instance{}, fmt.Errorf("aws: RunInstances for %q answered %d instances, want 1", spec.Name, len(out.Instances))
	case errorCode(err) == "IdempotentParameterMismatch":
		if in, ok, err := p.byToken(ctx, token); err != nil || ok {
			return in, err
		}
		return compute.Instance{}, fmt.Errorf("aws: launching %q: %w", spec.Name, err)
	case launchRefusal(err):
		return compute.Instance{}, fmt.Errorf("aws: EC2 refused to launch %q as %s in %s (nothing was started): %w", spec.Name, p.cfg.InstanceType, p.zone(ctx), err)
	default:
		return compute.Instance{}, fmt.Errorf("aws: launching %q: %w", spec.Name, err)
	}
	return p.waitRunning(ctx, aws.ToString(out.Instances[0].InstanceId))
}

// runInput is the RunInstances request of spec.
func (p *Provider) runInput(ctx context.Context, spec compute.Spec, token string) (*ec2.RunInstancesInput, error) {
	root, err := p.rootDevice(ctx, spec.Image.Published.ID)
	if err != nil {
		return nil, err
	}
	ebsDev := &types.EbsBlockDevice{VolumeType: types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}
	if p.cfg.RootVolumeGB > 0 {
		ebsDev.VolumeSize = aws.Int32(int32(p.cfg.RootVolumeGB))
	}
	in := &ec2.RunInstancesInput{
		ImageId:             aws.String(spec.Image.Published.ID),
		InstanceType:        types.InstanceType(p.cfg.InstanceType),
		MinCount:            aws.Int32(1),
		MaxCount:            aws.Int32(1),
		ClientToken:         aws.String(token),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String(root), Ebs: ebsDev}},
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:   types.HttpTokensStateRequired,
			HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: instanceTags(spec)},
			{ResourceType: types.ResourceTypeVolume, Tags: instanceTags(spec)},
		},
	}
	if len(spec.UserData) > 0 {
		in.UserData = aws.String(encodeUserData(spec.UserData))
	}
	if p.cfg.SubnetID != "" {
		in.SubnetId = aws.String(p.cfg.SubnetID)
	} else if p.cfg.Zone != "" { // the zone volumes are made in (volumeZone)
		in.Placement = &types.Placement{AvailabilityZone: aws.String(p.cfg.Zone)}
	}
	ids, names := splitGroups(p.cfg.SecurityGroups)
	in.SecurityGroupIds, in.SecurityGroups = ids, names
	if p.cfg.KeyName != "" {
		in.KeyName = aws.String(p.cfg.KeyName)
	}
	if spec.CloudRole != "" {
		profile, err := p.cfg.instanceProfile(spec.CloudRole)
		if err != nil {
			return nil, fmt.Errorf("aws: spec %q: cloud role: %w", spec.Name, err)
		}
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(profile)}
	}
	return in, nil
}

// rootDevice is the root device name of an AMI (DescribeImages), for the root volume's mapping.
func (p *Provider) rootDevice(ctx context.Context, ami string) (string, error) {
	out, err := p.c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if imageGone(err) || err == nil && len(out.Images) == 0 {
		return "", fmt.Errorf("aws: AMI %s does not exist in %s (deregistered?): publish the image again", ami, p.cfg.Region)
	}
	if err != nil {
		return "", fmt.Errorf("aws: looking up AMI %s: %w", ami, err)
	}
	img := out.Images[0]
	if img.State != types.ImageStateAvailable {
		return "", fmt.Errorf("aws: AMI %s is %s, not available", ami, img.State)
	}
	if img.RootDeviceName == nil {
		return "", fmt.Errorf("aws: AMI %s has no root device name", ami)
	}
	return *img.RootDeviceName, nil
}

// zone names where a launch was refused: the subnet's availability zone, or the region when the
// block names no subnet (EC2 then picks a zone of the default VPC).
func (p *Provider) zone(ctx context.Context) string {
	if p.cfg.SubnetID == "" {
		return "region " + p.cfg.Region + " (the default VPC's zone EC2 picked)"
	}
	out, err := p.c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{p.cfg.SubnetID}})
	if err != nil || len(out.Subnets) == 0 || out.Subnets[0].AvailabilityZone == nil {
		return "subnet " + p.cfg.SubnetID + " of " + p.cfg.Region
	}
	return "zone " + *out.Subnets[0].AvailabilityZone + " (subnet " + p.cfg.SubnetID + ")"
}

// byToken finds the instance a launch with ClientToken token made, in any state EC2 still reports.
func (p *Provider) byToken(ctx context.Context, token string) (compute.Instance, bool, error) {
	ins, err := p.describe(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("client-token", token)}})
	if err != nil {
		return compute.Instance{}, false, fmt.Errorf("aws: looking up client token %q: %w", token, err)
	}
	// The filter is EC2's; checking again costs nothing and keeps a misread filter from adopting
	// another launch's instance.
	ins = slices.DeleteFunc(ins, func(in types.Instance) bool { return aws.ToString(in.ClientToken) != token })
	if len(ins) == 0 {
		return compute.Instance{}, false, nil
	}
	// Several answers would be EC2 keeping a terminated instance and a new one of the token,
	// which it does not do; the newest is the one a launch now would return.
	newest := ins[0]
	for _, in := range ins[1:] {
		if aws.ToTime(in.LaunchTime).After(aws.ToTime(newest.LaunchTime)) {
			newest = in
		}
	}
	return p.instance(newest), true, nil
}

// waitRunning polls the new instance id until it runs. EC2 is eventually consistent: an instance
// RunInstances just returned may be unknown to DescribeInstances for a few seconds
// (InvalidInstanceID.NotFound), which is waited out for up to notFoundGrace.
func (p *Provider) waitRunning(ctx context.Context, id string) (compute.Instance, error) {
	const notFoundGrace = 2 * time.Minute
	start := time.Now()
	w := p.poller()
	for {
		in, err := p.describeOne(ctx, id)
		switch {
		case notFound(err) && time.Since(start) < notFoundGrace:
		case err != nil:
			return compute.Instance{}, fmt.Errorf("aws: waiting for instance %s to run: %w", id, err)
		case in.State != nil && in.State.Name == types.InstanceStateNameRunning:
			return p.instance(in), nil
		case in.State != nil && (in.State.Name == types.InstanceStateNameShuttingDown || in.State.Name == types.InstanceStateNameTerminated):
			return compute.Instance{}, fmt.Errorf("aws: instance %s went from pending to %s on its own: %s", id, in.State.Name, stateReason(in))
		}
		if err := w.wait(ctx); err != nil {
			return compute.Instance{}, fmt.Errorf("aws: waiting for instance %s to run: %w", id, err)
		}
	}
}

func stateReason(in types.Instance) string {
	if r := in.StateReason; r != nil && (r.Code != nil || r.Message != nil) {
		return fmt.Sprintf("%s (%s)", aws.ToString(r.Message), aws.ToString(r.Code))
	}
	if in.StateTransitionReason != nil && *in.StateTransitionReason != "" {
		return *in.StateTransitionReason
	}
	return "EC2 gave no reason"
}

// firstPoll is the first wait of a poll loop: most waits in EC2 end within seconds (an instance
// runs, a snapshot completes), so a loop starts asking often and slows down to the provider's poll
// interval, which bounds the requests of a long wait.
const firstPoll = 200 * time.Millisecond

// poller is one poll loop's waits: firstPoll, doubling up to the provider's interval.
type poller struct{ next, max time.Duration }

func (p *Provider) poller() *poller { return &poller{next: min(firstPoll, p.poll), max: p.poll} }

// wait sleeps the loop's next wait, or until ctx ends.
func (w *poller) wait(ctx context.Context) error {
	d := w.next
	w.next = min(2*w.next, w.max)
	return sleep(ctx, d)
}

// sleep waits d or until ctx ends, whichever is first.
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

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}
