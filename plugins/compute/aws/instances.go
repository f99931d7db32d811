package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/drover-dev/drover/plugins/compute"
)

// liveStates are the instance states Instances lists: EC2 keeps reporting a terminated instance
// for about an hour, but Terminate (or EC2, for one that died) already destroyed it and its disk,
// so there is nothing left to clean up. One shutting down is listed as Terminated.
var liveStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// Instances implements compute.Provider: DescribeInstances with a filter per label (tag
// "drover:NAME") and the state filter liveStates, limited to instances drover launched (those
// with a drover-token tag).
func (p *Provider) Instances(ctx context.Context, sel compute.Selector) ([]compute.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	filters := []types.Filter{filter("tag:"+tokenTag, "*"), filter("instance-state-name", liveStates...)}
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		filters = append(filters, filter("tag:"+labelTagPrefix+k, sel[k]))
	}
	ins, err := p.describe(ctx, &ec2.DescribeInstancesInput{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("aws: listing instances %v: %w", sel, err)
	}
	out := make([]compute.Instance, 0, len(ins))
	for _, in := range ins {
		if in.State == nil || !slices.Contains(liveStates, string(in.State.Name)) || tag(in.Tags, tokenTag) == "" {
			continue
		}
		if c := p.instance(in); sel.Matches(c.Labels) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Terminate implements compute.Provider with TerminateInstances, which also deletes the root
// volume (launched with DeleteOnTermination). It does not wait for the instance to be gone:
// Instances lists it as Terminated while it shuts down. An unknown instance is not an error.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("aws: %w", err)
	}
	if id == "" {
		return fmt.Errorf("aws: terminate: empty instance ID")
	}
	_, err := p.c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil && !notFound(err) {
		return fmt.Errorf("aws: terminating %s: %w", id, err)
	}
	return nil
}

// Stop implements compute.Stopper with StopInstances, and waits until EC2 reports the instance
// stopped. Stopping a stopped instance does nothing; an unknown or terminated one is an error
// wrapping compute.ErrNotFound.
func (p *Provider) Stop(ctx context.Context, id string) error {
	w := p.poller()
	for {
		in, err := p.mustExist(ctx, id)
		if err != nil {
			return err
		}
		switch in.State.Name {
		case types.InstanceStateNameStopped:
			return nil
		case types.InstanceStateNamePending, types.InstanceStateNameRunning:
			if _, err := p.c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil && errorCode(err) != "IncorrectInstanceState" {
				return fmt.Errorf("aws: stopping %s: %w", id, err)
			}
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("aws: waiting for %s to stop: %w", id, err)
		}
	}
}

// Start implements compute.Stopper with StartInstances (after a stop in progress has finished);
// it returns once the instance is pending or running. Starting a running instance does nothing;
// an unknown or terminated one is an error wrapping compute.ErrNotFound.
func (p *Provider) Start(ctx context.Context, id string) error {
	w := p.poller()
	for {
		in, err := p.mustExist(ctx, id)
		if err != nil {
			return err
		}
		switch in.State.Name {
		case types.InstanceStateNamePending, types.InstanceStateNameRunning:
			return nil
		case types.InstanceStateNameStopped:
			_, err := p.c.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
			if err == nil {
				return nil
			}
			if errorCode(err) != "IncorrectInstanceState" {
				return fmt.Errorf("aws: starting %s: %w", id, err)
			}
		}
		if err := w.wait(ctx); err != nil {
			return fmt.Errorf("aws: waiting for %s to stop before starting it: %w", id, err)
		}
	}
}

// mustExist describes id, or fails with compute.ErrNotFound when it is unknown or terminated.
func (p *Provider) mustExist(ctx context.Context, id string) (types.Instance, error) {
	if err := ctx.Err(); err != nil {
		return types.Instance{}, fmt.Errorf("aws: %w", err)
	}
	in, err := p.describeOne(ctx, id)
	if notFound(err) || err == nil && (in.State == nil || in.State.Name == types.InstanceStateNameTerminated || in.State.Name == types.InstanceStateNameShuttingDown) {
		return types.Instance{}, fmt.Errorf("aws: instance %q: %w", id, compute.ErrNotFound)
	}
	if err != nil {
		return types.Instance{}, fmt.Errorf("aws: describing %s: %w", id, err)
	}
	return in, nil
}

// describe returns every instance of every page of a DescribeInstances.
func (p *Provider) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]types.Instance, error) {
	var out []types.Instance
	pages := ec2.NewDescribeInstancesPaginator(p.c.ec2, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

// describeOne describes one instance by ID; an unknown one is EC2's InvalidInstanceID.NotFound.
func (p *Provider) describeOne(ctx context.Context, id string) (types.Instance, error) {
	out, err := p.c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return types.Instance{}, err
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id {
				return in, nil
			}
		}
	}
	return types.Instance{}, &notFoundError{id: id}
}

// notFoundError is an instance missing from an answer that did not say why; it has EC2's code.
type notFoundError struct{ id string }

func (e *notFoundError) Error() string {
	return "InvalidInstanceID.NotFound: instance " + e.id + " is not in the answer"
}
func (e *notFoundError) ErrorCode() string             { return "InvalidInstanceID.NotFound" }
func (e *notFoundError) ErrorMessage() string          { return e.Error() }
func (e *notFoundError) ErrorFault() smithy.ErrorFault { return 0 }

// instance converts EC2's description.
func (p *Provider) instance(in types.Instance) compute.Instance {
	c := compute.Instance{ID: aws.ToString(in.InstanceId), Labels: map[string]string{}, Created: aws.ToTime(in.LaunchTime)}
	for _, t := range in.Tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		switch {
		case k == "Name":
			c.Name = v
		case k == portsTag:
			c.Ports = parsePorts(v)
		case strings.HasPrefix(k, labelTagPrefix):
			c.Labels[strings.TrimPrefix(k, labelTagPrefix)] = v
		}
	}
	if in.State != nil {
		c.State = state(in.State.Name)
	}
	ip := in.PublicIpAddress
	if p.cfg.address() == AddressPrivate {
		ip = in.PrivateIpAddress
	}
	if a, err := netip.ParseAddr(aws.ToString(ip)); err == nil {
		c.Address = a
	}
	return c
}

func state(s types.InstanceStateName) compute.State {
	switch s {
	case types.InstanceStateNamePending:
		return compute.Pending
	case types.InstanceStateNameRunning:
		return compute.Running
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return compute.Stopped
	default: // shutting-down, terminated
		return compute.Terminated
	}
}

// instanceTags are the tags of spec's instance and root volume.
func instanceTags(spec compute.Spec) []types.Tag {
	tags := []types.Tag{{Key: aws.String(tokenTag), Value: aws.String(spec.Token)}}
	if spec.Name != "" {
		tags = append(tags, types.Tag{Key: aws.String("Name"), Value: aws.String(spec.Name)})
	}
	if len(spec.Ports) > 0 {
		ps := make([]string, len(spec.Ports))
		for i, p := range spec.Ports {
			ps[i] = strconv.Itoa(p)
		}
		tags = append(tags, types.Tag{Key: aws.String(portsTag), Value: aws.String(strings.Join(ps, ","))})
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		tags = append(tags, types.Tag{Key: aws.String(labelTagPrefix + k), Value: aws.String(spec.Labels[k])})
	}
	return tags
}

func parsePorts(s string) []int {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		if n, err := strconv.Atoi(f); err == nil {
			ports = append(ports, n)
		}
	}
	return ports
}

// encodeUserData is RunInstances' UserData: base64, as the Query API wants it (the SDK does not
// encode it).
func encodeUserData(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// splitGroups splits security groups into IDs ("sg-...") and names (which EC2 accepts only in a
// default VPC).
func splitGroups(groups []string) (ids, names []string) {
	for _, g := range groups {
		if strings.HasPrefix(g, "sg-") {
			ids = append(ids, g)
		} else {
			names = append(names, g)
		}
	}
	return ids, names
}

// parseTime reads EC2's ISO 8601 times ("2026-12-04T12:00:00.000Z").
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparsable time %q", s)
}
