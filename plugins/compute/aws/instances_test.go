package aws

import (
	"encoding/base64"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/drover-dev/drover/plugins/compute"
)

func TestInstanceFromTags(t *testing.T) {
	spec := compute.Spec{Token: "r1/web/0", Name: "web-0", Labels: map[string]string{"role": "web", "color": "green"}, Ports: []int{80, 443}}
	launched := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ec2in := types.Instance{
		InstanceId:       aws.String("i-0abc"),
		Tags:             append(instanceTags(spec), types.Tag{Key: aws.String("team"), Value: aws.String("ops")}),
		State:            &types.InstanceState{Name: types.InstanceStateNameRunning},
		PublicIpAddress:  aws.String("203.0.113.7"),
		PrivateIpAddress: aws.String("10.0.1.7"),
		LaunchTime:       &launched,
	}
	pub := (&Provider{cfg: Config{Address: AddressPublic}}).instance(ec2in)
	if pub.ID != "i-0abc" || pub.Name != "web-0" || pub.State != compute.Running || !pub.Created.Equal(launched) {
		t.Errorf("instance = %+v", pub)
	}
	if len(pub.Labels) != 2 || pub.Labels["role"] != "web" || pub.Labels["color"] != "green" {
		t.Errorf("labels = %v, want the spec's (and no other tags)", pub.Labels)
	}
	if !slices.Equal(pub.Ports, []int{80, 443}) {
		t.Errorf("ports = %v", pub.Ports)
	}
	if pub.Address != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("public address = %v", pub.Address)
	}
	if priv := (&Provider{cfg: Config{Address: AddressPrivate}}).instance(ec2in); priv.Address != netip.MustParseAddr("10.0.1.7") {
		t.Errorf("private address = %v", priv.Address)
	}
}

func TestStateMapping(t *testing.T) {
	for s, want := range map[types.InstanceStateName]compute.State{
		"pending": compute.Pending, "running": compute.Running, "stopping": compute.Stopped,
		"stopped": compute.Stopped, "shutting-down": compute.Terminated, "terminated": compute.Terminated,
	} {
		if got := state(s); got != want {
			t.Errorf("state(%s) = %s, want %s", s, got, want)
		}
	}
}

func TestLaunchHelpers(t *testing.T) {
	ids, names := splitGroups([]string{"sg-1", "default", "sg-2"})
	if !slices.Equal(ids, []string{"sg-1", "sg-2"}) || !slices.Equal(names, []string{"default"}) {
		t.Errorf("splitGroups = %v, %v", ids, names)
	}
	if got, _ := base64.StdEncoding.DecodeString(encodeUserData([]byte("token\x00"))); string(got) != "token\x00" {
		t.Errorf("user data does not round-trip: %q", got)
	}
	if !slices.Equal(parsePorts("80,x,443"), []int{80, 443}) {
		t.Error("parsePorts")
	}
}
