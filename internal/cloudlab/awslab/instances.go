package awslab

// EC2's RunInstances and DescribeInstances. One instance per call (MinCount = MaxCount = 1), in
// one reservation; ClientToken makes RunInstances idempotent (the same token and parameters answer
// the same reservation, other parameters IdempotentParameterMismatch), as EC2 documents. Left out:
// launch templates, network interfaces, placement, key pairs, spot, and a second volume.

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Instance is what the fake knows of one instance, for tests.
type Instance struct {
	ID, ImageID, InstanceType string
	State                     string // pending, running, shutting-down, terminated, stopping, stopped
	StateReason               string // the state reason's code, such as Server.InternalError
	PrivateIP                 netip.Addr
	PublicIP                  netip.Addr // the instance's own loopback address (an Elastic IP shows in DescribeInstances instead)
	SubnetID                  string
	SecurityGroupIDs          []string
	InstanceProfile           string // as given: a name or an ARN
	UserData                  []byte
	HTTPTokens                string // required or optional
	ClientToken               string
	Tags                      map[string]string
	LaunchTime                time.Time
}

type instance struct {
	Instance
	reservationID  string
	request        string // the RunInstances parameters, for ClientToken reuse
	role           *InstanceProfile
	arch, bootMode string
	rootDevice     string
	volumeType     string
	volumeSize     int64
	stateReasonMsg string
	reason         string // EC2's legacy transition reason text
	pendingPolls   int
	hidePolls      int
	failLaunch     bool
	settle         string // without a machine: the state the next DescribeInstances shows
	gen            int    // bumped at every transition, so a late boot or stop is ignored
	machine        Machine
	console        []byte
	dir, disk      string
	terminatedAt   time.Time
	eip            netip.Addr
	imds           *metadata
}

// Instances returns the instances the fake holds, terminated ones included.
func (c *Cloud) Instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Instance
	for _, id := range sortedKeys(c.instances) {
		in := c.instances[id].Instance
		in.Tags = cloneTags(in.Tags)
		in.SecurityGroupIDs = slices.Clone(in.SecurityGroupIDs)
		out = append(out, in)
	}
	return out
}

// Consoles returns the serial console of every instance that has had a machine, terminated ones
// included (as GetConsoleOutput keeps it), by instance ID: what a test prints when a rollout
// failed and drover terminated the instance that would have told why.
func (c *Cloud) Consoles() map[string][]byte {
	c.mu.Lock()
	machines := map[string]Machine{}
	out := map[string][]byte{}
	for id, in := range c.instances {
		switch {
		case in.machine != nil:
			machines[id] = in.machine
		case in.console != nil:
			out[id] = in.console
		}
	}
	c.mu.Unlock()
	for id, m := range machines {
		if b, err := m.Console(); err == nil {
			out[id] = b
		}
	}
	return out
}

// gravitonRE is an instance type with a Graviton (arm64) processor: a family with "g" after its
// generation, such as t4g, m7g, c7gn.
var gravitonRE = regexp.MustCompile(`^[a-z]+\d+g[a-z]*\.`)

func (c *Cloud) runInstances(f url.Values) (any, *ec2Error) {
	imageID, itype := f.Get("ImageId"), f.Get("InstanceType")
	switch {
	case imageID == "":
		return nil, missing("ImageId")
	case itype == "":
		return nil, missing("InstanceType")
	case f.Get("MinCount") != "1" || f.Get("MaxCount") != "1":
		return nil, badParam("awslab launches one instance per call: MinCount and MaxCount must be 1, got %q and %q", f.Get("MinCount"), f.Get("MaxCount"))
	}
	token, request := clientToken(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.tokens[token]; ok && token != "" {
		in := c.instances[id]
		if in.request != request {
			return nil, tokenReused(token)
		}
		return c.reservationXML(in), nil
	}
	zone := c.opts.Region + "a"
	if c.ec2Faults.noCapacity > 0 {
		c.ec2Faults.noCapacity--
		return nil, &ec2Error{http.StatusInternalServerError, "InsufficientInstanceCapacity", "We currently do not have sufficient " + itype +
			" capacity in the Availability Zone you requested (" + zone + "). Our system will be working on provisioning additional capacity. You can currently get " +
			itype + " capacity by not specifying an Availability Zone in your request or choosing " + c.opts.Region + "b, " + c.opts.Region + "c."}
	}
	if !strings.HasPrefix(imageID, "ami-") {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIID.Malformed", "Invalid id: \"" + imageID + "\" (expecting \"ami-...\")"}
	}
	im := c.images[imageID]
	if im == nil {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[" + imageID + "]' does not exist"}
	}
	typeArch := "x86_64"
	if gravitonRE.MatchString(itype) {
		typeArch = "arm64"
	}
	if im.Architecture != typeArch {
		return nil, badParam("The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.", typeArch, im.Architecture)
	}
	in := &instance{Instance: Instance{ID: newID("i"), ImageID: imageID, InstanceType: itype, State: "pending",
		SubnetID: f.Get("SubnetId"), SecurityGroupIDs: members(f, "SecurityGroupId"), ClientToken: token,
		LaunchTime: time.Now().UTC().Truncate(time.Second)},
		reservationID: newID("r"), request: request, arch: im.Architecture, rootDevice: im.RootDeviceName,
		volumeType: im.VolumeType, volumeSize: im.VolumeSize, pendingPolls: c.opts.PendingPolls, hidePolls: c.ec2Faults.hidePolls}
	if in.SubnetID == "" { // the subnet and groups may come with the primary network interface instead
		in.SubnetID, in.SecurityGroupIDs = f.Get("NetworkInterface.1.SubnetId"), append(in.SecurityGroupIDs, members(f, "NetworkInterface.1.SecurityGroupId")...)
	}
	if in.SubnetID != "" && !strings.HasPrefix(in.SubnetID, "subnet-") {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidSubnetID.Malformed", "Invalid id: \"" + in.SubnetID + "\" (expecting \"subnet-...\")"}
	}
	for _, g := range in.SecurityGroupIDs {
		if !strings.HasPrefix(g, "sg-") {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidGroupId.Malformed", "Invalid id: \"" + g + "\" (expecting \"sg-...\")"}
		}
	}
	if p := f.Get("IamInstanceProfile.Arn") + f.Get("IamInstanceProfile.Name"); p != "" {
		prof, ok := c.profile(p)
		if !ok {
			field := map[bool]string{true: "arn", false: "name"}[f.Get("IamInstanceProfile.Arn") != ""]
			return nil, badParam("Value (%s) for parameter iamInstanceProfile.%s is invalid. Invalid IAM Instance Profile %s", p, field, field)
		}
		in.InstanceProfile, in.role = p, &prof
	}
	if ud := f.Get("UserData"); ud != "" {
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, badParam("Invalid BASE64 encoding of user data.")
		}
		if len(b) > 16<<10 {
			return nil, badParam("User data is limited to 16384 bytes")
		}
		in.UserData = b
	}
	in.HTTPTokens = f.Get("MetadataOptions.HttpTokens")
	switch {
	case in.HTTPTokens == "" && im.ImdsSupport == "v2.0":
		in.HTTPTokens = "required"
	case in.HTTPTokens == "":
		in.HTTPTokens = "optional"
	case in.HTTPTokens != "required" && in.HTTPTokens != "optional":
		return nil, badParam("Value (%s) for parameter metadataOptions.httpTokens is invalid.", in.HTTPTokens)
	case in.HTTPTokens == "optional" && im.ImdsSupport == "v2.0":
		return nil, badParam("The AMI %s requires IMDSv2 (ImdsSupport v2.0): HttpTokens must be required.", imageID)
	}
	specs, e := tagSpecs(f, "instance", "volume", "network-interface")
	if e != nil {
		return nil, e
	}
	in.Tags = specs["instance"]
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	switch {
	case im.Architecture == "arm64", im.BootMode == "uefi", im.BootMode == "uefi-preferred":
		in.bootMode = "uefi"
	default:
		in.bootMode = "legacy-bios"
	}
	pub, err := c.allocAddress()
	if err != nil {
		return nil, &ec2Error{http.StatusBadRequest, "AddressLimitExceeded", err.Error()}
	}
	in.PublicIP, in.PrivateIP = pub, c.allocPrivate()
	if c.ec2Faults.failLaunches > 0 {
		c.ec2Faults.failLaunches--
		in.failLaunch = true
	}
	in.imds = &metadata{c: c, id: in.ID, tokens: map[string]time.Time{}}
	c.instances[in.ID] = in
	if token != "" {
		c.tokens[token] = in.ID
	}
	c.launch(in)
	return c.reservationXML(in), nil
}

// profile finds an instance profile of Options.InstanceProfiles by name or ARN, whichever of the
// two the options and the request use.
func (c *Cloud) profile(nameOrARN string) (InstanceProfile, bool) {
	name := func(s string) string {
		if i := strings.LastIndex(s, ":instance-profile/"); i >= 0 {
			s = s[i+len(":instance-profile/"):]
		}
		return s[strings.LastIndex(s, "/")+1:]
	}
	if p, ok := c.opts.InstanceProfiles[nameOrARN]; ok {
		return p, true
	}
	for k, p := range c.opts.InstanceProfiles {
		if name(k) == name(nameOrARN) {
			return p, true
		}
	}
	return InstanceProfile{}, false
}

// visible reports whether DescribeInstances shows in now, and counts the poll; c.mu is held.
func (c *Cloud) visible(in *instance) bool {
	if in.hidePolls > 0 {
		in.hidePolls--
		return false
	}
	return in.State != "terminated" || time.Since(in.terminatedAt) < c.opts.TerminatedVisible
}

func (c *Cloud) describeInstances(f url.Values) (any, *ec2Error) {
	filters, e := filtersOf(f, "instance-state-name", "instance-id", "image-id", "instance-type", "private-ip-address",
		"ip-address", "subnet-id", "client-token", "reservation-id")
	if e != nil {
		return nil, e
	}
	ids := members(f, "InstanceId")
	c.mu.Lock()
	defer c.mu.Unlock()
	var unknown []string
	shown := map[string]bool{}
	for _, id := range sortedKeys(c.instances) {
		shown[id] = c.visible(c.instances[id])
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.Malformed", "Invalid id: \"" + id + "\""}
		}
		if !shown[id] {
			unknown = append(unknown, id)
		}
	}
	switch len(unknown) {
	case 0:
	case 1:
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + unknown[0] + "' does not exist"}
	default:
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance IDs '" + strings.Join(unknown, ", ") + "' do not exist"}
	}
	var list []*instance
	for _, in := range c.instances {
		if shown[in.ID] && (len(ids) == 0 || slices.Contains(ids, in.ID)) {
			list = append(list, in)
		}
	}
	slices.SortFunc(list, func(a, b *instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var items []reservationXML
	for _, in := range list {
		c.advance(in)
		if !matches(filters, in.Tags, func(name string) []string {
			return map[string][]string{"instance-state-name": {in.State}, "instance-id": {in.ID}, "image-id": {in.ImageID},
				"instance-type": {in.InstanceType}, "private-ip-address": {in.PrivateIP.String()}, "ip-address": {c.publicOf(in)},
				"subnet-id": {in.SubnetID}, "client-token": {in.ClientToken}, "reservation-id": {in.reservationID}}[name]
		}) {
			continue
		}
		items = append(items, c.reservationXML(in))
	}
	items, next, e := page(f, items, 5, 1000, ids)
	if e != nil {
		return nil, e
	}
	return struct {
		Reservations []reservationXML `xml:"reservationSet>item"`
		NextToken    string           `xml:"nextToken,omitempty"`
	}{items, next}, nil
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func state(name string) stateXML { return stateXML{stateCodes[name], name} }

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type instanceXML struct {
	InstanceID      string     `xml:"instanceId"`
	ImageID         string     `xml:"imageId"`
	InstanceState   stateXML   `xml:"instanceState"`
	PrivateDNSName  string     `xml:"privateDnsName"`
	DNSName         string     `xml:"dnsName"`
	Reason          string     `xml:"reason"`
	AmiLaunchIndex  int        `xml:"amiLaunchIndex"`
	InstanceType    string     `xml:"instanceType"`
	LaunchTime      string     `xml:"launchTime"`
	Zone            string     `xml:"placement>availabilityZone"`
	Tenancy         string     `xml:"placement>tenancy"`
	Monitoring      string     `xml:"monitoring>state"`
	SubnetID        string     `xml:"subnetId,omitempty"`
	VpcID           string     `xml:"vpcId,omitempty"`
	PrivateIP       string     `xml:"privateIpAddress"`
	PublicIP        string     `xml:"ipAddress,omitempty"`
	SourceDestCheck bool       `xml:"sourceDestCheck"`
	Groups          []groupXML `xml:"groupSet>item"`
	StateReason     *struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	} `xml:"stateReason"`
	Architecture       string    `xml:"architecture"`
	RootDeviceType     string    `xml:"rootDeviceType"`
	RootDeviceName     string    `xml:"rootDeviceName"`
	VirtualizationType string    `xml:"virtualizationType"`
	ClientToken        string    `xml:"clientToken,omitempty"`
	TagSet             []tagItem `xml:"tagSet>item"`
	Hypervisor         string    `xml:"hypervisor"`
	EnaSupport         bool      `xml:"enaSupport"`
	Profile            *struct {
		Arn string `xml:"arn"`
		ID  string `xml:"id"`
	} `xml:"iamInstanceProfile"`
	Metadata struct {
		State    string `xml:"state"`
		Tokens   string `xml:"httpTokens"`
		HopLimit int    `xml:"httpPutResponseHopLimit"`
		Endpoint string `xml:"httpEndpoint"`
	} `xml:"metadataOptions"`
	BootMode        string `xml:"bootMode,omitempty"`
	CurrentBootMode string `xml:"currentInstanceBootMode"`
	// BlockDevices are the attached data volumes (the root volume is not a resource here).
	BlockDevices []blockDeviceXML `xml:"blockDeviceMapping>item"`
}

type blockDeviceXML struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		VolumeID            string `xml:"volumeId"`
		Status              string `xml:"status"`
		AttachTime          string `xml:"attachTime"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
	} `xml:"ebs"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []groupXML    `xml:"groupSet>item"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

// publicOf is the public address DescribeInstances shows: the Elastic IP when one is associated,
// as on EC2; none once the instance is stopped or gone.
func (c *Cloud) publicOf(in *instance) string {
	switch {
	case in.State == "terminated" || in.State == "stopped" || in.State == "shutting-down":
		return ""
	case in.eip.IsValid():
		return in.eip.String()
	}
	return in.PublicIP.String()
}

func (c *Cloud) reservationXML(in *instance) reservationXML {
	x := instanceXML{InstanceID: in.ID, ImageID: in.ImageID, InstanceState: state(in.State), Reason: in.reason,
		PrivateDNSName: "ip-" + strings.ReplaceAll(in.PrivateIP.String(), ".", "-") + ".ec2.internal",
		InstanceType:   in.InstanceType, LaunchTime: ec2Time(in.LaunchTime), Zone: c.opts.Region + "a", Tenancy: "default",
		Monitoring: "disabled", SubnetID: in.SubnetID, PrivateIP: in.PrivateIP.String(), PublicIP: c.publicOf(in),
		SourceDestCheck: true, Architecture: in.arch, RootDeviceType: "ebs", RootDeviceName: in.rootDevice,
		VirtualizationType: "hvm", ClientToken: in.ClientToken, TagSet: tagItems(in.Tags), Hypervisor: "xen", EnaSupport: true,
		BootMode: in.bootMode, CurrentBootMode: in.bootMode}
	if in.SubnetID != "" {
		x.VpcID = "vpc-0a1b2c3d4e5f60718"
	}
	for _, g := range in.SecurityGroupIDs {
		x.Groups = append(x.Groups, groupXML{g, "sg-" + g[3:]})
	}
	if in.StateReason != "" {
		x.StateReason = &struct {
			Code    string `xml:"code"`
			Message string `xml:"message"`
		}{in.StateReason, in.stateReasonMsg}
	}
	if in.role != nil {
		arn := in.InstanceProfile
		if !strings.HasPrefix(arn, "arn:") {
			arn = "arn:aws:iam::" + c.opts.Account + ":instance-profile/" + arn
		}
		x.Profile = &struct {
			Arn string `xml:"arn"`
			ID  string `xml:"id"`
		}{arn, "AIPA" + strings.ToUpper(in.ID[2:])}
	}
	x.Metadata.State, x.Metadata.Tokens, x.Metadata.HopLimit, x.Metadata.Endpoint = "applied", in.HTTPTokens, 2, "enabled"
	for _, id := range sortedKeys(c.volumes) {
		if v := c.volumes[id]; v.Instance == in.ID {
			var b blockDeviceXML
			b.DeviceName, b.EBS.VolumeID, b.EBS.Status, b.EBS.AttachTime = v.Device, v.ID, v.Attachment, ec2Time(v.attachedAt)
			x.BlockDevices = append(x.BlockDevices, b)
		}
	}
	return reservationXML{ReservationID: in.reservationID, OwnerID: c.opts.Account, Instances: []instanceXML{x}}
}

// rootBlocks opens the instance's root snapshot for assembling its disk; c.mu is held.
func (c *Cloud) rootBlocks(in *instance) (*os.File, []int32, error) {
	im := c.images[in.ImageID]
	if im == nil {
		return nil, nil, errorf("the image %s is gone", in.ImageID)
	}
	s := c.snapshots[im.RootSnapshotID]
	if s == nil {
		return nil, nil, errorf("the snapshot %s is gone", im.RootSnapshotID)
	}
	f, err := os.Open(s.file.Name())
	if err != nil {
		return nil, nil, err
	}
	return f, sortedKeys(s.sums), nil
}
