package awseip_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/awseip"
	"github.com/drover-dev/drover/plugins/ip/iptest"
)

// lab is the fake cloud with an aws compute provider and a published image to launch.
type lab struct {
	cloud   *awslab.Cloud
	creds   awssdk.CredentialsProvider
	compute *aws.Provider
	image   compute.PublishedImage
	n       int
}

func newLab(t *testing.T) *lab {
	t.Helper()
	c := awslab.New(t, awslab.Options{})
	l := &lab{cloud: c, creds: credentials.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")}
	p, err := aws.New(t.Context(), &aws.Config{Region: c.Region(), InstanceType: "t3.micro"}, aws.WithCredentials(l.creds),
		aws.WithEndpoints(c.EC2URL(), c.EBSURL()), aws.WithRetry(10, 20*time.Millisecond), aws.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l.compute = p
	disk := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 1<<20)
	rand.Read(data[:4096])
	if err := os.WriteFile(disk, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	if l.image, err = p.Publish(t.Context(), compute.PublishSource{Identity: "sha256:" + hex.EncodeToString(id), Role: "web", Arch: "amd64", Path: disk, Size: int64(len(data))}, nil); err != nil {
		t.Fatal(err)
	}
	return l
}

// launch starts n instances of the lab's image and returns their IDs.
func (l *lab) launch(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		l.n++
		in, err := l.compute.Launch(t.Context(), compute.Spec{Token: fmt.Sprintf("eip-%d", l.n), Name: "web", Image: compute.Image{Published: l.image}, Labels: map[string]string{"role": "web"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	return ids
}

// allocate makes an Elastic IP and returns its allocation ID and address.
func (l *lab) allocate(t *testing.T) (string, netip.Addr) {
	t.Helper()
	client := ec2.New(ec2.Options{Region: l.cloud.Region(), Credentials: l.creds, BaseEndpoint: awssdk.String(l.cloud.EC2URL())})
	out, err := client.AllocateAddress(context.Background(), &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	return awssdk.ToString(out.AllocationId), netip.MustParseAddr(awssdk.ToString(out.PublicIp))
}

func (l *lab) provider(t *testing.T, allocation string) *awseip.Provider {
	t.Helper()
	p, err := awseip.New(context.Background(), &awseip.Config{AllocationID: allocation}, l.compute,
		awseip.WithCredentials(l.creds), awseip.WithEndpoint(l.cloud.EC2URL()),
		awseip.WithRetry(10, 20*time.Millisecond), awseip.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContract runs iptest with fresh addresses and instances per subtest. An instance holds one
// Elastic IP here (OneAddressPerInstance): EC2 associates an address given only an instance with
// the instance's primary private address, replacing the Elastic IP it held, and the fake does the
// same; drover moves one address per ip block.
func TestContract(t *testing.T) {
	l := newLab(t)
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		a0, addr0 := l.allocate(t)
		_, addr1 := l.allocate(t)
		p := l.provider(t, a0)
		if p.Address() != addr0 {
			t.Fatalf("Address() = %v, want the allocation's %v", p.Address(), addr0)
		}
		return iptest.Fixture{
			Provider:  p,
			Addrs:     []netip.Addr{addr0, addr1},
			Instances: l.launch(t, 2),
			Unknown:   "i-0fffffffffffffff0",
			Reopen:    func(t *testing.T) ip.Provider { return l.provider(t, a0) },
			Kill: func(t *testing.T, id string) {
				if err := l.compute.Terminate(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			},
			OneAddressPerInstance: true,
		}
	}, iptest.Options{})
}

// TestAssignFaults: throttling and 5xx of AssociateAddress and DescribeAddresses are survived.
func TestAssignFaults(t *testing.T) {
	l := newLab(t)
	instances := l.launch(t, 2)
	a, addr := l.allocate(t)
	p := l.provider(t, a)
	for _, f := range []awslab.Fault{awslab.EC2RequestLimitExceeded, awslab.EC2InternalError, awslab.EC2Unavailable} {
		for _, action := range []string{"AssociateAddress", "DescribeAddresses"} {
			f.Action, f.Times = action, 2
			l.cloud.Fail(f)
			target := instances[0]
			if got, _ := p.Holder(t.Context(), addr); got == target {
				target = instances[1]
			}
			if err := p.Assign(t.Context(), addr, target); err != nil {
				t.Fatalf("Assign with %s on %s: %v", f.Code, action, err)
			}
			if got, err := p.Holder(t.Context(), addr); err != nil || got != target {
				t.Fatalf("after Assign with %s on %s: Holder = %q, %v; want %s", f.Code, action, got, err, target)
			}
		}
	}
}

// TestFactory opens the provider as drover does: the SDK's chain, with AWS_ENDPOINT_URL_EC2
// pointing at the fake, and the region taken from the aws compute block's provider.
func TestFactory(t *testing.T) {
	l := newLab(t)
	a, addr := l.allocate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", awslab.DefaultAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awslab.DefaultSecretKey)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_ENDPOINT_URL_EC2", l.cloud.EC2URL())
	f := awseip.Factory()
	cfg, err := f.NewConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	cfg.(*awseip.Config).AllocationID = a
	p, err := f.Open(t.Context(), cfg, config.Env{Name: "web", Lookup: config.OS()}, l.compute)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(ip.Addresser).Address(); got != addr {
		t.Errorf("Address() = %v, want %v", got, addr)
	}
	in := l.launch(t, 1)[0]
	if err := p.Assign(t.Context(), addr, in); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Holder(t.Context(), addr); err != nil || got != in {
		t.Errorf("Holder = %q, %v; want %s", got, err, in)
	}
	bad := &awseip.Config{AllocationID: "eipalloc-0000000000000000f"}
	if _, err := f.Open(t.Context(), bad, config.Env{Lookup: config.OS()}, l.compute); err == nil {
		t.Error("Open with an allocation that does not exist: no error")
	}
}
