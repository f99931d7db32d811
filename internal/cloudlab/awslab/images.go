package awslab

// EC2's image actions: RegisterImage (EBS-backed, hvm; the root device's snapshot must be
// completed; TagSpecifications for the image and its snapshots), DescribeImages (Owners, ImageIds,
// Filters name, state, image-id, architecture, tag:K, tag-key) and DeregisterImage (with
// DeleteAssociatedSnapshots). An image is available as soon as it is
// registered (EC2 has it pending for a few seconds); a deregistered image is gone at once (EC2
// lists it a while longer).

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Image is what the fake knows of one registered image, for tests.
type Image struct {
	ID, Name, Description string
	State                 string
	Architecture          string // x86_64 or arm64
	RootDeviceName        string
	RootSnapshotID        string
	VolumeType            string
	VolumeSize            int64
	BootMode              string // legacy-bios, uefi or uefi-preferred; empty when not given
	ImdsSupport           string // v2.0 or empty
	EnaSupport            bool
	Tags                  map[string]string
}

type image struct {
	Image
	created time.Time
	bdms    []blockDevice
}

type blockDevice struct {
	device, snapshot, volumeType string
	size                         int64
	deleteOnTermination          bool
}

// Images returns the images the fake holds.
func (c *Cloud) Images() []Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Image
	for _, im := range c.images {
		i := im.Image
		i.Tags = cloneTags(im.Tags)
		out = append(out, i)
	}
	return out
}

func (c *Cloud) registerImage(f url.Values) (any, *ec2Error) {
	name := f.Get("Name")
	im := &image{Image: Image{ID: newID("ami"), Name: name, Description: f.Get("Description"), State: "available",
		Architecture: f.Get("Architecture"), RootDeviceName: f.Get("RootDeviceName"), BootMode: f.Get("BootMode"),
		ImdsSupport: f.Get("ImdsSupport"), EnaSupport: f.Get("EnaSupport") == "true"}, created: time.Now().UTC()}
	if im.Architecture == "" {
		im.Architecture = "i386" // EC2's default
	}
	switch {
	case name == "":
		return nil, missing("Name")
	case len(name) < 3 || len(name) > 128:
		return nil, badParam("AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'")
	case !slices.Contains([]string{"i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"}, im.Architecture):
		return nil, badParam("Value (%s) for parameter architecture is invalid.", im.Architecture)
	case im.BootMode != "" && !slices.Contains([]string{"legacy-bios", "uefi", "uefi-preferred"}, im.BootMode):
		return nil, badParam("Value (%s) for parameter bootMode is invalid.", im.BootMode)
	case im.ImdsSupport != "" && im.ImdsSupport != "v2.0":
		return nil, badParam("Value (%s) for parameter imdsSupport is invalid.", im.ImdsSupport)
	case f.Get("ImageLocation") != "":
		return nil, badParam("awslab registers EBS-backed images only (no ImageLocation)")
	case im.RootDeviceName == "":
		return nil, missing("RootDeviceName")
	case f.Get("VirtualizationType") != "" && f.Get("VirtualizationType") != "hvm":
		return nil, badParam("Value (%s) for parameter virtualizationType is invalid.", f.Get("VirtualizationType"))
	}
	specs, e := tagSpecs(f, "image", "snapshot")
	if e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.images {
		if o.Name == name {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIName.Duplicate", "AMI name " + name + " is already in use by AMI " + o.ID}
		}
	}
	for i := 1; i <= count(f, "BlockDeviceMapping"); i++ {
		p := "BlockDeviceMapping." + strconv.Itoa(i)
		d := blockDevice{device: f.Get(p + ".DeviceName"), snapshot: f.Get(p + ".Ebs.SnapshotId"),
			volumeType: f.Get(p + ".Ebs.VolumeType"), deleteOnTermination: f.Get(p+".Ebs.DeleteOnTermination") != "false"}
		if d.device == "" {
			return nil, missing(p + ".DeviceName")
		}
		if d.volumeType == "" {
			d.volumeType = "gp2"
		}
		if !slices.Contains([]string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}, d.volumeType) {
			return nil, badParam("Value (%s) for parameter volumeType is invalid.", d.volumeType)
		}
		if d.snapshot != "" {
			s := c.snapshots[d.snapshot]
			if s == nil {
				return nil, &ec2Error{http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '" + d.snapshot + "' does not exist."}
			}
			c.expire(s)
			if s.state != "completed" {
				return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "Snapshot '" + d.snapshot + "' is not 'completed' (it is '" + s.state + "')."}
			}
			d.size = s.volumeSize
		}
		if v := f.Get(p + ".Ebs.VolumeSize"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 65536 {
				return nil, badParam("Value (%s) for parameter volumeSize is invalid.", v)
			}
			if n < d.size {
				return nil, &ec2Error{http.StatusBadRequest, "InvalidBlockDeviceMapping", "Volume of size " + v + "GB is smaller than snapshot '" + d.snapshot + "', expect size >= " + strconv.FormatInt(d.size, 10) + "GB"}
			}
			d.size = n
		}
		im.bdms = append(im.bdms, d)
	}
	root := slices.IndexFunc(im.bdms, func(d blockDevice) bool { return d.device == im.RootDeviceName })
	if root < 0 || im.bdms[root].snapshot == "" {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidBlockDeviceMapping", "The device '" + im.RootDeviceName + "' (the root device) has no snapshot in the block device mapping."}
	}
	im.RootSnapshotID, im.VolumeType, im.VolumeSize = im.bdms[root].snapshot, im.bdms[root].volumeType, im.bdms[root].size
	im.Tags = specs["image"]
	if im.Tags == nil {
		im.Tags = map[string]string{}
	}
	for k, v := range specs["snapshot"] {
		for _, d := range im.bdms {
			if s := c.snapshots[d.snapshot]; s != nil {
				s.tags[k] = v
			}
		}
	}
	c.images[im.ID] = im
	return struct {
		ImageID string `xml:"imageId"`
	}{im.ID}, nil
}

type ebsXML struct {
	SnapshotID          string `xml:"snapshotId,omitempty"`
	VolumeSize          int64  `xml:"volumeSize,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	VolumeType          string `xml:"volumeType,omitempty"`
	Encrypted           bool   `xml:"encrypted"`
}

type bdmXML struct {
	DeviceName string `xml:"deviceName"`
	Ebs        ebsXML `xml:"ebs"`
}

type imageXML struct {
	ImageID            string    `xml:"imageId"`
	ImageLocation      string    `xml:"imageLocation"`
	ImageState         string    `xml:"imageState"`
	ImageOwnerID       string    `xml:"imageOwnerId"`
	CreationDate       string    `xml:"creationDate"`
	IsPublic           bool      `xml:"isPublic"`
	Architecture       string    `xml:"architecture"`
	ImageType          string    `xml:"imageType"`
	Name               string    `xml:"name"`
	Description        string    `xml:"description,omitempty"`
	RootDeviceType     string    `xml:"rootDeviceType"`
	RootDeviceName     string    `xml:"rootDeviceName"`
	BlockDeviceMapping []bdmXML  `xml:"blockDeviceMapping>item"`
	VirtualizationType string    `xml:"virtualizationType"`
	Hypervisor         string    `xml:"hypervisor"`
	EnaSupport         bool      `xml:"enaSupport"`
	BootMode           string    `xml:"bootMode,omitempty"`
	ImdsSupport        string    `xml:"imdsSupport,omitempty"`
	TagSet             []tagItem `xml:"tagSet>item"`
}

func (c *Cloud) imageXML(im *image) imageXML {
	x := imageXML{ImageID: im.ID, ImageLocation: c.opts.Account + "/" + im.Name, ImageState: im.State, ImageOwnerID: c.opts.Account,
		CreationDate: ec2Time(im.created), Architecture: im.Architecture, ImageType: "machine", Name: im.Name,
		Description: im.Description, RootDeviceType: "ebs", RootDeviceName: im.RootDeviceName, VirtualizationType: "hvm",
		Hypervisor: "xen", EnaSupport: im.EnaSupport, BootMode: im.BootMode, ImdsSupport: im.ImdsSupport, TagSet: tagItems(im.Tags)}
	for _, d := range im.bdms {
		x.BlockDeviceMapping = append(x.BlockDeviceMapping, bdmXML{d.device, ebsXML{d.snapshot, d.size, d.deleteOnTermination, d.volumeType, false}})
	}
	return x
}

// ownedBySelf reports whether Owner.N names this account (self or its ID); no owners is every
// image the caller can see, which here is the account's own.
func (c *Cloud) ownedBySelf(owners []string) bool {
	return len(owners) == 0 || slices.Contains(owners, "self") || slices.Contains(owners, c.opts.Account)
}

func (c *Cloud) describeImages(f url.Values) (any, *ec2Error) {
	filters, e := filtersOf(f, "name", "state", "image-id", "architecture", "owner-id", "root-device-name")
	if e != nil {
		return nil, e
	}
	ids := members(f, "ImageId")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if !strings.HasPrefix(id, "ami-") {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIID.Malformed", "Invalid id: \"" + id + "\" (expecting \"ami-...\")"}
		}
		if c.images[id] == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[" + id + "]' does not exist"}
		}
	}
	var items []imageXML
	if c.ownedBySelf(members(f, "Owner")) {
		for _, id := range sortedKeys(c.images) {
			im := c.images[id]
			if len(ids) > 0 && !slices.Contains(ids, id) {
				continue
			}
			if !matches(filters, im.Tags, func(name string) []string {
				return map[string][]string{"name": {im.Name}, "state": {im.State}, "image-id": {im.ID}, "architecture": {im.Architecture},
					"owner-id": {c.opts.Account}, "root-device-name": {im.RootDeviceName}}[name]
			}) {
				continue
			}
			items = append(items, c.imageXML(im))
		}
	}
	items, next, e := page(f, items, 5, 1000, ids)
	if e != nil {
		return nil, e
	}
	return struct {
		Images    []imageXML `xml:"imagesSet>item"`
		NextToken string     `xml:"nextToken,omitempty"`
	}{items, next}, nil
}

type deleteSnapshotResult struct {
	SnapshotID string `xml:"snapshotId"`
	ReturnCode string `xml:"returnCode"`
}

func (c *Cloud) deregisterImage(f url.Values) (any, *ec2Error) {
	id := f.Get("ImageId")
	if id == "" {
		return nil, missing("ImageId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.images[id]
	if im == nil {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[" + id + "]' does not exist"}
	}
	delete(c.images, id)
	out := struct {
		Return  bool                   `xml:"return"`
		Results []deleteSnapshotResult `xml:"deleteSnapshotResultSet>item"`
	}{Return: true}
	if f.Get("DeleteAssociatedSnapshots") == "true" {
		for _, d := range im.bdms {
			if d.snapshot == "" {
				continue
			}
			code := "success"
			if e := c.removeSnapshot(d.snapshot); e != nil {
				code = "error"
			}
			out.Results = append(out.Results, deleteSnapshotResult{d.snapshot, code})
		}
	}
	return out, nil
}
