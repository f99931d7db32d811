package awslab

// EC2's EBS volume actions, as documented at
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/ (CreateVolume, DescribeVolumes,
// AttachVolume, DetachVolume, DeleteVolume, CreateSnapshot): a volume is creating, then available
// at the next DescribeVolumes; AttachVolume takes an available volume in the instance's zone
// (VolumeInUse for one attached anywhere, IncorrectState for one in another state,
// InvalidVolume.ZoneMismatch for another zone) and its attachment goes attaching -> attached;
// DetachVolume moves it detaching -> detached, the volume back to available; DeleteVolume refuses
// an attached volume (VolumeInUse) and shows it deleting once before it is gone. CreateVolume's
// ClientToken makes it idempotent. CreateSnapshot copies the volume's data at once and is pending
// for Options.SnapshotPendingPolls DescribeSnapshots calls; CreateVolume with a SnapshotId
// restores its data. A terminated instance's volumes are detached (the root volume is its disk
// file, not a volume here).
//
// A volume's data is a sparse raw file under Options.Dir. When the instance's Machine implements
// VolumeAttacher, attach and detach hot-plug that file into the running guest, and the
// attachment becomes attached (or detached) when the Machine says so. Left out: io1/io2 IOPS
// settings, multi-attach, encryption, ModifyVolume, fast snapshot restore, and volumes of a
// stopped instance reaching its machine when it starts again.

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VolumeAttacher is the optional interface of a Machine that can hot-plug a volume's raw file
// into the running guest, where it shows as an NVMe disk whose serial is serial (the volume ID
// without its dash, as EBS's Nitro NVMe devices show it). AttachDisk returns once the VM has the
// device (the guest's kernel finds it a moment later); DetachDisk once the guest has released it.
// QEMU's machines (qemu.go) implement it; a Machine without it has volumes in the API only.
//
// On EC2 the guest finds the disk at /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_<serial>
// (udev's name: the NVMe model, spaces made underscores, and the serial). QEMU's nvme device
// (7.2, the lab's) sets the serial but not the model ("QEMU NVMe Ctrl"), so a guest of the lab sees
// nvme-QEMU_NVMe_Ctrl_<serial>: drover-boot, which falls back to the NVMe serial
// (/sys/block/nvme*/device/serial), finds the volume on both.
type VolumeAttacher interface {
	AttachDisk(path, serial string) error
	DetachDisk(serial string) error
}

// Volume is what the fake knows of one EBS volume, for tests.
type Volume struct {
	ID, Zone, State, VolumeType, SnapshotID string
	SizeGiB                                 int64
	Tags                                    map[string]string
	Path                                    string // its raw data file
	// Instance, Device and Attachment are the attachment's, empty when there is none.
	Instance, Device, Attachment string
}

type volume struct {
	Volume
	created      time.Time
	request      string // CreateVolume's parameters, for ClientToken reuse
	attachedAt   time.Time
	settleAttach string // without a machine: what the next DescribeVolumes makes the attachment
	gone         bool   // deleting shown once: the next DescribeVolumes forgets it
}

// Serial is the NVMe serial EBS gives volume id: the ID without its dash (vol0123...).
func Serial(id string) string { return strings.Replace(id, "-", "", 1) }

// Volumes returns the volumes the fake holds.
func (c *Cloud) Volumes() []Volume {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Volume
	for _, id := range sortedKeys(c.volumes) {
		v := c.volumes[id].Volume
		v.Tags = cloneTags(v.Tags)
		out = append(out, v)
	}
	return out
}

var volumeNotFound = func(id string) *ec2Error {
	return &ec2Error{http.StatusBadRequest, "InvalidVolume.NotFound", "The volume '" + id + "' does not exist."}
}

// zones are the zones the fake takes for volumes: instances all run in the first.
func (c *Cloud) zones() []string {
	return []string{c.opts.Region + "a", c.opts.Region + "b", c.opts.Region + "c"}
}

func (c *Cloud) createVolume(f url.Values) (any, *ec2Error) {
	zone, snapID, vtype := f.Get("AvailabilityZone"), f.Get("SnapshotId"), f.Get("VolumeType")
	if zone == "" {
		return nil, missing("AvailabilityZone")
	}
	if !slices.Contains(c.zones(), zone) {
		return nil, badParam("Invalid availability zone: [%s]", zone)
	}
	if vtype == "" {
		vtype = "gp2"
	}
	if !slices.Contains([]string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}, vtype) {
		return nil, badParam("Value (%s) for parameter volumeType is invalid.", vtype)
	}
	specs, e := tagSpecs(f, "volume")
	if e != nil {
		return nil, e
	}
	token, request := clientToken(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.volumeTokens[token]; ok && token != "" {
		v := c.volumes[id]
		if v.request != request {
			return nil, tokenReused(token)
		}
		return c.volumeXML(v), nil
	}
	var size int64
	if s := f.Get("Size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > 16384 {
			return nil, badParam("Volume of %s GiB is invalid: the size must be between 1 and 16384 GiB.", s)
		}
		size = n
	}
	var src *snapshot
	if snapID != "" {
		src = c.snapshots[snapID]
		if src == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '" + snapID + "' does not exist."}
		}
		if c.expire(src); src.state != "completed" {
			return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "Snapshot is in invalid state - " + src.state}
		}
		if size == 0 {
			size = src.volumeSize
		}
		if size < src.volumeSize {
			return nil, badParam("Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB", size, snapID, src.volumeSize)
		}
	}
	if size == 0 {
		return nil, &ec2Error{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter size or snapshotId"}
	}
	v := &volume{Volume: Volume{ID: newID("vol"), Zone: zone, State: "creating", VolumeType: vtype, SnapshotID: snapID,
		SizeGiB: size, Tags: specs["volume"]}, created: time.Now().UTC().Truncate(time.Millisecond), request: request}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	v.Path = c.opts.Dir + "/" + v.ID + ".raw"
	if err := c.volumeData(v, src); err != nil {
		return nil, &ec2Error{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	c.volumes[v.ID] = v
	if token != "" {
		c.volumeTokens[token] = v.ID
	}
	return c.volumeXML(v), nil
}

func (c *Cloud) describeVolumes(f url.Values) (any, *ec2Error) {
	filters, e := filtersOf(f, "volume-id", "status", "availability-zone", "snapshot-id", "size", "volume-type",
		"attachment.instance-id", "attachment.status", "attachment.device", "tag-key")
	if e != nil {
		return nil, e
	}
	ids := members(f, "VolumeId")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if v := c.volumes[id]; v == nil || (v.gone && v.State != "deleting") {
			return nil, volumeNotFound(id)
		}
	}
	var items []volumeXML
	for _, id := range sortedKeys(c.volumes) {
		v := c.volumes[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		c.advanceVolume(v)
		if v.gone && v.State != "deleting" {
			continue
		}
		if !matches(filters, v.Tags, func(name string) []string {
			return map[string][]string{"volume-id": {v.ID}, "status": {v.State}, "availability-zone": {v.Zone},
				"snapshot-id": {v.SnapshotID}, "size": {strconv.FormatInt(v.SizeGiB, 10)}, "volume-type": {v.VolumeType},
				"attachment.instance-id": {v.Instance}, "attachment.status": {v.Attachment}, "attachment.device": {v.Device}}[name]
		}) {
			continue
		}
		items = append(items, c.volumeXML(v))
		if v.State == "deleting" {
			v.State = "deleted"
		}
	}
	items, next, e := page(f, items, 5, 500, ids)
	if e != nil {
		return nil, e
	}
	return struct {
		Volumes   []volumeXML `xml:"volumeSet>item"`
		NextToken string      `xml:"nextToken,omitempty"`
	}{items, next}, nil
}

// advanceVolume moves v on at a DescribeVolumes poll; c.mu is held.
func (c *Cloud) advanceVolume(v *volume) {
	switch {
	case v.State == "creating":
		v.State = "available"
	case v.State == "deleted":
		delete(c.volumes, v.ID)
	case v.settleAttach == "attached":
		v.Attachment, v.settleAttach = "attached", ""
	case v.settleAttach == "detached":
		c.detached(v)
	}
}

// detached forgets v's attachment; c.mu is held.
func (c *Cloud) detached(v *volume) {
	v.Instance, v.Device, v.Attachment, v.settleAttach, v.State = "", "", "", "", "available"
}

// deviceRE is a device name AttachVolume takes for an EBS volume on Linux.
var deviceRE = regexp.MustCompile(`^/dev/(sd[b-z]|xvd[b-z]|xvd[b-z][a-z])$`)

func (c *Cloud) attachVolume(f url.Values) (any, *ec2Error) {
	id, instanceID, device := f.Get("VolumeId"), f.Get("InstanceId"), f.Get("Device")
	switch {
	case id == "":
		return nil, missing("VolumeId")
	case instanceID == "":
		return nil, missing("InstanceId")
	case device == "":
		return nil, missing("Device")
	case !deviceRE.MatchString(device):
		return nil, badParam("Invalid value '%s' for unixDevice. Attachment point %s is not in a valid format.", device, device)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil || v.gone {
		return nil, volumeNotFound(id)
	}
	in := c.instances[instanceID]
	if in == nil || in.State == "terminated" {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + instanceID + "' does not exist"}
	}
	switch {
	case v.Instance != "":
		return nil, &ec2Error{http.StatusBadRequest, "VolumeInUse", id + " is already attached to an instance"}
	case v.State != "available":
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", id + " is not 'available'."}
	case v.Zone != c.opts.Region+"a":
		return nil, &ec2Error{http.StatusBadRequest, "InvalidVolume.ZoneMismatch", "The volume '" + id + "' is not in the same availability zone as instance '" + instanceID + "'"}
	case in.State != "running" && in.State != "stopped":
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectInstanceState", "Instance '" + instanceID + "' is not 'running'."}
	}
	if device == in.rootDevice {
		return nil, badParam("Invalid value '%s' for unixDevice. Attachment point %s is already in use", device, device)
	}
	for _, o := range c.volumes {
		if o.Instance == instanceID && o.Device == device {
			return nil, badParam("Invalid value '%s' for unixDevice. Attachment point %s is already in use", device, device)
		}
	}
	v.Instance, v.Device, v.Attachment, v.State, v.attachedAt = instanceID, device, "attaching", "in-use", time.Now().UTC()
	if va, ok := in.machine.(VolumeAttacher); ok && in.State == "running" {
		c.hotplug(v, instanceID, func() error { return va.AttachDisk(v.Path, Serial(v.ID)) }, "attached")
	} else {
		v.settleAttach = "attached"
	}
	return c.attachmentXML(v), nil
}

// hotplug runs plug (a VolumeAttacher call) away from c.mu and then moves v's attachment of
// instanceID to then ("attached" or "detached"); a failed plug leaves the volume available (an
// attach) or attached (a detach), as a failed EBS attachment does. c.mu is held.
func (c *Cloud) hotplug(v *volume, instanceID string, plug func() error, then string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := plug()
		c.mu.Lock()
		defer c.mu.Unlock()
		if v.Instance != instanceID { // the instance was terminated meanwhile
			return
		}
		switch {
		case err != nil && then == "attached":
			c.t.Logf("awslab: attaching %s to %s: %v", v.ID, instanceID, err)
			c.detached(v)
		case err != nil:
			c.t.Logf("awslab: detaching %s from %s: %v", v.ID, instanceID, err)
			v.Attachment = "attached"
		case then == "attached":
			v.Attachment = "attached"
		default:
			c.detached(v)
		}
	}()
}

func (c *Cloud) detachVolume(f url.Values) (any, *ec2Error) {
	id := f.Get("VolumeId")
	if id == "" {
		return nil, missing("VolumeId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil || v.gone {
		return nil, volumeNotFound(id)
	}
	if want := f.Get("InstanceId"); want != "" && want != v.Instance {
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "Volume '" + id + "' is not attached to instance '" + want + "'"}
	}
	if v.Attachment != "attached" {
		state := v.State
		if v.Attachment != "" {
			state = v.Attachment
		}
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "Volume '" + id + "' is in the '" + state + "' state."}
	}
	v.Attachment = "detaching"
	in := c.instances[v.Instance]
	if va, ok := in.machine.(VolumeAttacher); ok && in.State == "running" {
		c.hotplug(v, v.Instance, func() error { return va.DetachDisk(Serial(v.ID)) }, "detached")
	} else {
		v.settleAttach = "detached"
	}
	return c.attachmentXML(v), nil
}

func (c *Cloud) deleteVolume(f url.Values) (any, *ec2Error) {
	id := f.Get("VolumeId")
	if id == "" {
		return nil, missing("VolumeId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil || v.gone {
		return nil, volumeNotFound(id)
	}
	switch {
	case v.Instance != "":
		return nil, &ec2Error{http.StatusBadRequest, "VolumeInUse", "Volume " + id + " is currently attached to " + v.Instance}
	case v.State == "creating":
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "The volume '" + id + "' is 'creating'"}
	}
	v.State, v.gone = "deleting", true
	_ = removeFile(v.Path)
	return returnTrue{true}, nil
}

// detachAll detaches the volumes of a terminated instance; c.mu is held.
func (c *Cloud) detachAll(instanceID string) {
	for _, v := range c.volumes {
		if v.Instance == instanceID {
			c.detached(v)
		}
	}
}

type attachmentXML struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type volumeXML struct {
	VolumeID    string          `xml:"volumeId"`
	Size        int64           `xml:"size"`
	SnapshotID  string          `xml:"snapshotId"`
	Zone        string          `xml:"availabilityZone"`
	Status      string          `xml:"status"`
	CreateTime  string          `xml:"createTime"`
	Attachments []attachmentXML `xml:"attachmentSet>item"`
	TagSet      []tagItem       `xml:"tagSet>item"`
	VolumeType  string          `xml:"volumeType"`
	Iops        int             `xml:"iops,omitempty"`
	Throughput  int             `xml:"throughput,omitempty"`
	Encrypted   bool            `xml:"encrypted"`
	MultiAttach bool            `xml:"multiAttachEnabled"`
}

func (c *Cloud) attachmentXML(v *volume) attachmentXML {
	return attachmentXML{VolumeID: v.ID, InstanceID: v.Instance, Device: v.Device, Status: v.Attachment, AttachTime: ec2Time(v.attachedAt)}
}

func (c *Cloud) volumeXML(v *volume) volumeXML {
	x := volumeXML{VolumeID: v.ID, Size: v.SizeGiB, SnapshotID: v.SnapshotID, Zone: v.Zone, Status: v.State,
		CreateTime: ec2Time(v.created), TagSet: tagItems(v.Tags), VolumeType: v.VolumeType}
	if v.VolumeType == "gp3" {
		x.Iops, x.Throughput = 3000, 125
	}
	if v.Instance != "" {
		x.Attachments = []attachmentXML{c.attachmentXML(v)}
	}
	return x
}
