package awslab

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// image publishes a one-block image and returns its ID.
func image1(t *testing.T, c *Cloud, name, arch string) string {
	e, b := defaultClients(c)
	_, ami := publish(t, e, b, name, arch, 1, map[int32][]byte{0: block(0xAA)})
	return ami
}

func runInput(ami, token string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String(token), SubnetId: aws.String("subnet-0123456789abcdef0"), SecurityGroupIds: []string{"sg-0123456789abcdef0"},
		UserData:        aws.String(base64.StdEncoding.EncodeToString([]byte("#drover\nhello"))),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("drover:role"), Value: aws.String("web")}, {Key: aws.String("drover:token"), Value: aws.String(token)}}}}}
}

func describe(t *testing.T, e *ec2.Client, id string) ec2types.Instance {
	t.Helper()
	out, err := e.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: %+v", id, out)
	}
	return out.Reservations[0].Instances[0]
}

func TestRunDescribeTerminate(t *testing.T) {
	c := New(t, Options{PendingPolls: 1})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "web-1", "x86_64")
	run, err := e.RunInstances(ctx, runInput(ami, "rollout-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Instances) != 1 || run.Instances[0].State.Name != ec2types.InstanceStateNamePending || run.ReservationId == nil {
		t.Fatalf("RunInstances = %+v", run)
	}
	id := *run.Instances[0].InstanceId
	again, err := e.RunInstances(ctx, runInput(ami, "rollout-1"))
	if err != nil || *again.ReservationId != *run.ReservationId || *again.Instances[0].InstanceId != id {
		t.Fatalf("RunInstances with the same ClientToken: %+v, %v; want reservation %s again", again, err, *run.ReservationId)
	}
	other := runInput(ami, "rollout-1")
	other.InstanceType = ec2types.InstanceTypeT3Small
	_, err = e.RunInstances(ctx, other)
	wantCode(t, "RunInstances with the token and another type", err, "IdempotentParameterMismatch")

	var tokens []string
	for _, r := range c.Requests() {
		if r.Action == "RunInstances" {
			tokens = append(tokens, r.Params.Get("ClientToken"))
		}
	}
	if len(tokens) != 3 || tokens[0] != "rollout-1" {
		t.Fatalf("RunInstances client tokens %q", tokens)
	}
	if in := describe(t, e, id); in.State.Name != ec2types.InstanceStateNamePending {
		t.Fatalf("first poll: %s, want pending (PendingPolls 1)", in.State.Name)
	}
	in := describe(t, e, id)
	if in.State.Name != ec2types.InstanceStateNameRunning || *in.State.Code != 16 {
		t.Fatalf("second poll: %+v, want running", in.State)
	}
	if *in.ImageId != ami || *in.SubnetId != "subnet-0123456789abcdef0" || len(in.SecurityGroups) != 1 || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired ||
		*in.PrivateIpAddress == "" || *in.PublicIpAddress == "" || *in.ClientToken != "rollout-1" || len(in.Tags) != 2 || in.Architecture != "x86_64" {
		t.Fatalf("DescribeInstances answered %+v", in)
	}
	got := c.Instances()[0]
	if string(got.UserData) != "#drover\nhello" || got.PublicIP.String() != *in.PublicIpAddress || !c.opts.AddressRange.Contains(got.PublicIP) ||
		got.PrivateIP.As4()[0] != 172 || got.PrivateIP.As4()[1] != 31 {
		t.Fatalf("Instances() = %+v", got)
	}

	byTag, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:drover:role"), Values: []string{"web"}}, {Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	if err != nil || len(byTag.Reservations) != 1 {
		t.Fatalf("DescribeInstances by tag: %+v, %v", byTag, err)
	}

	for i := 0; i < 2; i++ { // idempotent
		out, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if err != nil || len(out.TerminatingInstances) != 1 {
			t.Fatalf("TerminateInstances: %+v, %v", out, err)
		}
	}
	in = describe(t, e, id)
	if in.State.Name != ec2types.InstanceStateNameTerminated || *in.StateReason.Code != "Client.UserInitiatedShutdown" || in.PublicIpAddress != nil {
		t.Fatalf("after TerminateInstances: %+v %+v", in.State, in.StateReason)
	}
	_, err = e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, "DescribeInstances of an unknown instance", err, "InvalidInstanceID.NotFound")
	_, err = e.RunInstances(ctx, runInput("ami-0123456789abcdef0", "x"))
	wantCode(t, "RunInstances of an unknown image", err, "InvalidAMIID.NotFound")
	arm := runInput(ami, "y")
	arm.InstanceType = ec2types.InstanceTypeT4gMicro
	_, err = e.RunInstances(ctx, arm)
	wantCode(t, "RunInstances of an x86_64 image on t4g", err, "InvalidParameterValue")
	bad := runInput(ami, "z")
	bad.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String("nobody")}
	_, err = e.RunInstances(ctx, bad)
	wantCode(t, "RunInstances with an unknown instance profile", err, "InvalidParameterValue")
}

func TestStopStartAndPages(t *testing.T) {
	c := New(t, Options{})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "web-2", "arm64")
	var ids []string
	for i := 0; i < 7; i++ {
		in := runInput(ami, fmt.Sprintf("tok-%d", i))
		in.InstanceType = ec2types.InstanceTypeT4gSmall
		out, err := e.RunInstances(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.Instances[0].InstanceId)
	}
	var seen []string
	p := ec2.NewDescribeInstancesPaginator(e, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Reservations {
			seen = append(seen, *r.Instances[0].InstanceId)
		}
	}
	if pages != 2 || len(seen) != 7 {
		t.Fatalf("%d pages of %v, want 2 pages of 7 instances", pages, seen)
	}
	_, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1], MaxResults: aws.Int32(5)})
	wantCode(t, "DescribeInstances with ids and MaxResults", err, "InvalidParameterCombination")

	id := ids[0]
	if st, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil || st.StoppingInstances[0].CurrentState.Name != ec2types.InstanceStateNameStopping {
		t.Fatalf("StopInstances: %+v, %v", st, err)
	}
	if in := describe(t, e, id); in.State.Name != ec2types.InstanceStateNameStopped {
		t.Fatalf("after StopInstances: %s", in.State.Name)
	}
	if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatalf("StopInstances of a stopped instance: %v", err)
	}
	if st, err := e.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil || st.StartingInstances[0].PreviousState.Name != ec2types.InstanceStateNameStopped {
		t.Fatalf("StartInstances: %+v, %v", st, err)
	}
	if in := describe(t, e, id); in.State.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("after StartInstances: %s", in.State.Name)
	}
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	wantCode(t, "StartInstances of a terminated instance", err, "IncorrectInstanceState")
	out, err := e.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(ids[1])})
	if err != nil || *out.InstanceId != ids[1] {
		t.Fatalf("GetConsoleOutput: %+v, %v", out, err)
	}
}

// The launch troubles of issue 13: InsufficientInstanceCapacity (nothing created), an instance
// unknown right after launch, one that goes pending -> terminated by itself, and throttling.
func TestLaunchFaults(t *testing.T) {
	c := New(t, Options{})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "web-3", "x86_64")

	c.InsufficientCapacity(3) // the SDK tries 3 times
	_, err := e.RunInstances(ctx, runInput(ami, "a"))
	wantCode(t, "RunInstances without capacity", err, "InsufficientInstanceCapacity")
	if n := len(c.Instances()); n != 0 {
		t.Fatalf("%d instances after InsufficientInstanceCapacity, want 0", n)
	}

	c.HideNewInstances(2)
	out, err := e.RunInstances(ctx, runInput(ami, "b"))
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	for i := 0; i < 2; i++ {
		_, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		wantCode(t, "DescribeInstances right after launch", err, "InvalidInstanceID.NotFound")
	}
	if in := describe(t, e, id); in.State.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("third DescribeInstances: %s", in.State.Name)
	}
	c.HideNewInstances(0)

	c.FailLaunches(1)
	out, err = e.RunInstances(ctx, runInput(ami, "c"))
	if err != nil {
		t.Fatal(err)
	}
	in := describe(t, e, *out.Instances[0].InstanceId)
	if in.State.Name != ec2types.InstanceStateNameTerminated || *in.StateReason.Code != "Server.InternalError" {
		t.Fatalf("a failed launch: %+v, %+v", in.State, in.StateReason)
	}

	c.Fail(Fault{Service: "ec2", Action: "DescribeInstances", Status: 503, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Times: 2})
	c.Fail(Fault{Service: "ec2", Action: "TerminateInstances", Status: 500, Code: "InternalError", Times: 1})
	if in := describe(t, e, id); in.State.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("DescribeInstances through throttling: %s", in.State.Name)
	}
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatalf("TerminateInstances through a 500: %v", err)
	}
	var throttled, internal int
	for _, r := range c.Requests() {
		switch r.Code {
		case "RequestLimitExceeded":
			throttled++
		case "InternalError":
			internal++
		}
	}
	if throttled != 2 || internal != 1 {
		t.Fatalf("answered %d RequestLimitExceeded and %d InternalError, want 2 and 1", throttled, internal)
	}
	// With every attempt throttled, the caller sees the code.
	c.Fail(EC2RequestLimitExceeded)
	c.Fail(EC2RequestLimitExceeded)
	c.Fail(EC2RequestLimitExceeded)
	_, err = e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	wantCode(t, "DescribeImages throttled 3 times", err, "RequestLimitExceeded")
}

// A request signed with the wrong secret, an unknown key, or for another region is refused with
// AWS's error, and logged as not verified; the SDK's own requests verify, PutSnapshotBlock's
// UNSIGNED-PAYLOAD included.
func TestSignatures(t *testing.T) {
	c := New(t, Options{})
	ctx := context.Background()
	image1(t, c, "signed", "x86_64")
	for _, r := range c.Requests() {
		if !r.Verified {
			t.Fatalf("the SDK's request %+v did not verify", r)
		}
	}
	noRetry := func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }
	e, b := clients(c, DefaultAccessKey, "not-the-secret")
	_, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{}, noRetry)
	wantCode(t, "EC2 with a wrong secret", err, "SignatureDoesNotMatch")
	_, err = b.ListSnapshotBlocks(ctx, &ebsListInput)
	wantCode(t, "EBS with a wrong secret", err, "InvalidSignatureException")
	e, _ = clients(c, "AKIAUNKNOWNKEY000000", "x")
	_, err = e.DescribeImages(ctx, &ec2.DescribeImagesInput{}, noRetry)
	wantCode(t, "EC2 with an unknown key", err, "AuthFailure")
	west := ec2.New(ec2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(c.EC2URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(DefaultAccessKey, DefaultSecretKey, "")})
	_, err = west.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	wantCode(t, "EC2 signed for eu-west-1", err, "SignatureDoesNotMatch")
	var refused int
	for _, r := range c.Requests() {
		if !r.Verified {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d requests logged as not verified, want 4", refused)
	}
}

var ebsListInput = ebs.ListSnapshotBlocksInput{SnapshotId: aws.String("snap-0123456789abcdef0")}
