package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.VolumeLabeler  = (*Provider)(nil)
	_ compute.UserDataEditor = (*Provider)(nil)
)

// SetVolumeLabels implements compute.VolumeLabeler with CreateTags (the new labels) then
// DeleteTags (the label tags no longer wanted); the token and Name tags stay. A crash between the
// two leaves both sets, which a retry finishes.
func (p *Provider) SetVolumeLabels(ctx context.Context, id string, labels map[string]string) (compute.Volume, error) {
	if err := ctx.Err(); err != nil {
		return compute.Volume{}, fmt.Errorf("aws: %w", err)
	}
	for k := range labels {
		if k == "" {
			return compute.Volume{}, fmt.Errorf("aws: labels of volume %s: empty label name", id)
		}
	}
	v, err := p.volume(ctx, id)
	if err != nil {
		return compute.Volume{}, err
	}
	have := labelsOf(v.Tags)
	if maps.Equal(have, labels) {
		return toVolume(v), nil
	}
	var add, drop []types.Tag
	for k, val := range labels {
		if cur, ok := have[k]; !ok || cur != val {
			add = append(add, types.Tag{Key: aws.String(labelTagPrefix + k), Value: aws.String(val)})
		}
	}
	for k := range have {
		if _, ok := labels[k]; !ok {
			drop = append(drop, types.Tag{Key: aws.String(labelTagPrefix + k)})
		}
	}
	if len(add) > 0 {
		if _, err := p.c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: add}); err != nil {
			return compute.Volume{}, fmt.Errorf("aws: labelling volume %s: %w", id, err)
		}
	}
	if len(drop) > 0 {
		if _, err := p.c.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: drop}); err != nil {
			return compute.Volume{}, fmt.Errorf("aws: removing labels of volume %s: %w", id, err)
		}
	}
	if v, err = p.volume(ctx, id); err != nil {
		return compute.Volume{}, err
	}
	return toVolume(v), nil
}

// EditUserData implements compute.UserDataEditor with DescribeInstanceAttribute and
// ModifyInstanceAttribute, which EC2 allows on a stopped instance only: one that is not stopped
// is refused with compute.ErrInstanceRunning.
func (p *Provider) EditUserData(ctx context.Context, instance string, edit func([]byte) ([]byte, error)) error {
	in, err := p.mustExist(ctx, instance)
	if err != nil {
		return err
	}
	if in.State.Name != types.InstanceStateNameStopped {
		return fmt.Errorf("aws: user-data of %s: it is %s: %w (stop it first)", instance, in.State.Name, compute.ErrInstanceRunning)
	}
	out, err := p.c.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instance), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		return fmt.Errorf("aws: reading the user-data of %s: %w", instance, err)
	}
	var old []byte
	if out.UserData != nil && aws.ToString(out.UserData.Value) != "" {
		if old, err = base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value)); err != nil {
			return fmt.Errorf("aws: the user-data of %s is not base64: %w", instance, err)
		}
	}
	b, err := edit(old)
	if err != nil {
		return fmt.Errorf("aws: user-data of %s: %w", instance, err)
	}
	_, err = p.c.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instance), UserData: &types.SecureBlobAttributeValue{Value: b}})
	if errorCode(err) == "IncorrectInstanceState" {
		return fmt.Errorf("aws: user-data of %s: %w: %w", instance, compute.ErrInstanceRunning, err)
	}
	if err != nil {
		return fmt.Errorf("aws: writing the user-data of %s: %w", instance, err)
	}
	return nil
}
