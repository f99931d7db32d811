// Package awslab is a fake of the AWS APIs drover's aws providers call, for tests: EC2's Query API
// (version 2016-11-15), the EBS direct APIs (2019-11-02) and the instance metadata service
// (IMDSv2), answering the real aws-sdk-go-v2 clients (service/ec2, service/ebs) pointed at its
// loopback endpoints. Every request's SigV4 signature is computed again with the secret key the fake
// knows, as AWS does, so a request signed with another key, for another region or service, or
// altered on the way, is refused with AWS's error.
//
// One Cloud is one region of one account. Snapshots written through the EBS direct APIs become
// the root volumes of images registered with RegisterImage; RunInstances launches them. With
// Options.Hypervisor set, an instance's root snapshot is assembled into a raw disk and booted (see
// Hypervisor); without it instances are API state only and go pending -> running by themselves.
// Each instance gets a private address in 172.31.0.0/16 (not reachable) and a public address that
// is a loopback address from Options.AddressRange; an Elastic IP is another loopback address on
// which the fake proxies Options.Ports to the instance the address is associated with.
//
// What it leaves out: one region, one account, one availability zone for instances (region +
// "a"; volumes may also be made in "b" and "c", which instances then cannot attach); no VPCs,
// subnets or security groups as resources (their IDs are taken as given, a subnet in zone "a");
// an instance's root volume is its disk file, not a volume (data volumes are: volumes.go); one
// instance per RunInstances call; no encryption, KMS, incremental snapshots (ParentSnapshotId) or ListChangedBlocks; DryRun is
// refused; an instance keeps its own public address across stop/start and Elastic IP moves (EC2
// hands out a new one), though DescribeInstances shows the Elastic IP while one is associated. Each file's comment says what its part follows.
//
// A client reaches the fake with its region (Cloud.Region), static credentials the fake knows
// (DefaultAccessKey and DefaultSecretKey unless Options.Credentials say otherwise), and the
// endpoints as BaseEndpoint (ec2.Options / ebs.Options), or through the environment of Env
// (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_EBS) with config.LoadDefaultConfig. The endpoints are
// plain http on 127.0.0.1.
package awslab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The account and the credentials a Cloud accepts unless Options say otherwise.
const (
	DefaultAccount   = "123456789012"
	DefaultRegion    = "us-east-1"
	DefaultAccessKey = "AKIAAWSLABEXAMPLE001"
	DefaultSecretKey = "awslab-secret-access-key-example-00001"
)

// Options configure a Cloud. The zero value is usable.
type Options struct {
	// Region is the region the fake serves and requests must be signed for (us-east-1).
	Region string
	// Account is the account ID of everything the fake holds (DefaultAccount).
	Account string
	// Credentials are the access key IDs the fake accepts and their secret keys
	// (DefaultAccessKey: DefaultSecretKey). Temporary credentials' session tokens are signed
	// along but not checked.
	Credentials map[string]string
	// AddressRange is where instances' public addresses and Elastic IPs come from: loopback
	// addresses, handed out in order. The default is a random /24 in 127.0.128.0/17; tests that
	// run several Clouds with Ports at once give each its own range.
	AddressRange netip.Prefix
	// Ports are the TCP ports an Elastic IP forwards to the instance it is associated with, and
	// the ports a Hypervisor forwards from an instance's public address to the guest.
	Ports []int
	// Hypervisor, when set, boots instances; nil means instances are API state only.
	Hypervisor Hypervisor
	// Routes are passed to the Hypervisor: guest-visible addresses of services "in the VPC".
	Routes map[netip.AddrPort]netip.AddrPort
	// PendingPolls is how many DescribeInstances calls naming an instance see it pending before
	// it runs, without a Hypervisor (0: running at the first DescribeInstances).
	PendingPolls int
	// SnapshotPendingPolls is how many DescribeSnapshots calls see a snapshot pending after
	// CompleteSnapshot before it is completed (0: completed at once).
	SnapshotPendingPolls int
	// TerminatedVisible is how long a terminated instance stays in DescribeInstances (1h).
	TerminatedVisible time.Duration
	// InstanceProfiles maps an instance profile's name or ARN to its role and the temporary
	// credentials the metadata service hands out for it.
	InstanceProfiles map[string]InstanceProfile
	// Dir holds snapshot blocks and instance disks (a t.TempDir() by default).
	Dir string
}

// InstanceProfile is what an instance launched with an instance profile gets from the metadata
// service: its role's name and temporary credentials.
type InstanceProfile struct {
	Role                         string
	AccessKeyID, SecretAccessKey string
	Token                        string
	Expiration                   time.Time // zero: an hour after the request
}

// Cloud is one region of the fake. Its methods are safe for concurrent use.
type Cloud struct {
	t    testing.TB
	opts Options
	ec2  *httptest.Server
	ebs  *httptest.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	snapshots map[string]*snapshot
	images    map[string]*image
	instances map[string]*instance
	addresses map[string]*address
	nextAddr  netip.Addr
	nextPriv  int
	log       []Request
	faults    []*queuedFault
	ebsBytes  int64
	tokens    map[string]string // RunInstances client token -> reservation ID
	ec2Faults ec2Faults
	throttle  blockThrottle

	volumes      map[string]*volume
	volumeTokens map[string]string // CreateVolume client token -> volume ID
}

// New starts the fake's EC2 and EBS endpoints on loopback; they, the Elastic IP proxies and every
// machine the Hypervisor booted are stopped when the test ends.
func New(t testing.TB, opts Options) *Cloud {
	t.Helper()
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Account == "" {
		opts.Account = DefaultAccount
	}
	if opts.Credentials == nil {
		opts.Credentials = map[string]string{DefaultAccessKey: DefaultSecretKey}
	}
	if !opts.AddressRange.IsValid() {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		opts.AddressRange = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 128 | b[0]&0x7f, 0}), 24)
	}
	if !opts.AddressRange.Addr().IsLoopback() {
		t.Fatalf("awslab: AddressRange %s is not loopback", opts.AddressRange)
	}
	if opts.TerminatedVisible == 0 {
		opts.TerminatedVisible = time.Hour
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c := &Cloud{
		t: t, opts: opts,
		snapshots: map[string]*snapshot{}, images: map[string]*image{}, instances: map[string]*instance{},
		addresses: map[string]*address{}, tokens: map[string]string{},
		volumes: map[string]*volume{}, volumeTokens: map[string]string{},
		nextAddr: opts.AddressRange.Masked().Addr().Next(), nextPriv: 16*256 + 10,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.ec2 = httptest.NewServer(http.HandlerFunc(c.serveEC2))
	c.ebs = httptest.NewServer(http.HandlerFunc(c.serveEBS))
	t.Cleanup(c.close)
	for _, s := range []*httptest.Server{c.ec2, c.ebs} {
		if !strings.HasPrefix(s.Listener.Addr().String(), "127.0.0.1:") {
			t.Fatalf("awslab: an endpoint listens on %s, not on loopback", s.Listener.Addr())
		}
	}
	return c
}

// Env is the environment that points an aws-sdk-go-v2 program (config.LoadDefaultConfig) at
// the fake: the endpoints (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_EBS), the region, the first
// credentials by access key ID, and AWS_EC2_METADATA_DISABLED so that the SDK never asks the
// real 169.254.169.254 for credentials or the region.
func (c *Cloud) Env() []string {
	keys := sortedKeys(c.opts.Credentials)
	return []string{
		"AWS_ENDPOINT_URL_EC2=" + c.EC2URL(), "AWS_ENDPOINT_URL_EBS=" + c.EBSURL(), "AWS_REGION=" + c.opts.Region,
		"AWS_ACCESS_KEY_ID=" + keys[0], "AWS_SECRET_ACCESS_KEY=" + c.opts.Credentials[keys[0]],
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// EC2URL is the EC2 endpoint (the ec2 client's BaseEndpoint, or AWS_ENDPOINT_URL_EC2).
func (c *Cloud) EC2URL() string { return c.ec2.URL }

// EBSURL is the EBS direct APIs' endpoint (the ebs client's BaseEndpoint, or AWS_ENDPOINT_URL_EBS).
func (c *Cloud) EBSURL() string { return c.ebs.URL }

// Region is the region the fake serves.
func (c *Cloud) Region() string { return c.opts.Region }

// Account is the account ID of everything the fake holds.
func (c *Cloud) Account() string { return c.opts.Account }

// close stops the endpoints (which waits for the requests in flight), the Elastic IP proxies,
// then waits for boots and stops in flight and stops every machine still up.
func (c *Cloud) close() {
	c.ec2.Close()
	c.ebs.Close()
	c.cancel()
	c.mu.Lock()
	for _, a := range c.addresses {
		a.proxy.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	var machines []*instance
	for _, in := range c.instances {
		if in.machine != nil {
			machines = append(machines, in)
		}
	}
	for _, s := range c.snapshots {
		s.file.Close()
	}
	c.mu.Unlock()
	for _, in := range machines {
		if err := in.machine.Stop(); err != nil {
			c.t.Errorf("awslab: stopping %s at the end of the test: %v", in.ID, err)
		}
	}
}

// Request is one request a fake endpoint received, for tests to assert on.
type Request struct {
	Time     time.Time
	Service  string     // "ec2" or "ebs"
	Action   string     // the API action, such as RunInstances or PutSnapshotBlock
	Path     string     // the URL path (EBS: it holds the snapshot ID and block index)
	Params   url.Values // EC2: the form (Action, Version and the action's parameters); EBS: the query
	KeyID    string     // the access key ID that signed it
	Verified bool       // whether its signature held
	Status   int        // the HTTP status answered
	Code     string     // the error code answered, if any
}

// Requests returns the requests received so far, in order.
func (c *Cloud) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// BytesReceived is the sum of the PutSnapshotBlock bodies the EBS endpoint accepted.
func (c *Cloud) BytesReceived() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ebsBytes
}

func (c *Cloud) record(r Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, r)
}

// newID is an AWS resource ID: prefix, "-", 17 hex digits.
func newID(prefix string) string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)[:17]
}

// allocAddress hands out the next loopback address of the range; c.mu is held.
func (c *Cloud) allocAddress() (netip.Addr, error) {
	a := c.nextAddr
	if !c.opts.AddressRange.Contains(a) || a == lastAddr(c.opts.AddressRange) {
		return netip.Addr{}, fmt.Errorf("awslab: address range %s exhausted", c.opts.AddressRange)
	}
	c.nextAddr = a.Next()
	return a, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	for i := 3; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	return netip.AddrFrom4(b)
}

// allocPrivate hands out the next private address, 172.31.x.y; c.mu is held.
func (c *Cloud) allocPrivate() netip.Addr {
	n := c.nextPriv
	c.nextPriv++
	return netip.AddrFrom4([4]byte{172, 31, byte(n >> 8), byte(n)})
}

func (c *Cloud) instanceDir(id string) (string, error) {
	d := c.opts.Dir + "/" + id
	return d, os.MkdirAll(d, 0o755)
}

// listenLoopback listens on addr:port; the address must be a loopback address (Linux routes all
// of 127.0.0.0/8 to lo).
func listenLoopback(addr netip.Addr, port int) (net.Listener, error) {
	return net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
}
