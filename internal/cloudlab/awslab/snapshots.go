package awslab

// EC2's DescribeSnapshots and DeleteSnapshot, and the tag actions CreateTags and DeleteTags, which
// take instances, images, snapshots and Elastic IP allocations. A snapshot being written (pending)
// may be deleted, so that a publish killed half way can be cleaned up.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

type snapshotXML struct {
	SnapshotID  string    `xml:"snapshotId"`
	VolumeID    string    `xml:"volumeId"`
	Status      string    `xml:"status"`
	StartTime   string    `xml:"startTime"`
	Progress    string    `xml:"progress"`
	OwnerID     string    `xml:"ownerId"`
	VolumeSize  int64     `xml:"volumeSize"`
	Description string    `xml:"description"`
	Encrypted   bool      `xml:"encrypted"`
	StorageTier string    `xml:"storageTier"`
	TagSet      []tagItem `xml:"tagSet>item"`
}

// describeSnapshots lists snapshots; each listing counts as one poll of a snapshot completing
// (Options.SnapshotPendingPolls).
func (c *Cloud) describeSnapshots(f url.Values) (any, *ec2Error) {
	filters, e := filtersOf(f, "status", "snapshot-id", "description", "owner-id", "volume-size", "volume-id", "tag-key")
	if e != nil {
		return nil, e
	}
	ids := members(f, "SnapshotId")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.snapshots[id] == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '" + id + "' does not exist."}
		}
	}
	var items []snapshotXML
	if c.ownedBySelf(members(f, "Owner")) {
		for _, id := range sortedKeys(c.snapshots) {
			s := c.snapshots[id]
			if len(ids) > 0 && !slices.Contains(ids, id) {
				continue
			}
			c.expire(s)
			if s.sealed && s.state == "pending" {
				if s.pendingPolls--; s.pendingPolls <= 0 {
					s.state = "completed"
				}
			}
			if !matches(filters, s.tags, func(name string) []string {
				return map[string][]string{"status": {s.state}, "snapshot-id": {s.id}, "description": {s.description},
					"owner-id": {c.opts.Account}, "volume-size": {strconv.FormatInt(s.volumeSize, 10)}, "volume-id": {s.volumeID}}[name]
			}) {
				continue
			}
			progress := map[string]string{"pending": "0%", "completed": "100%", "error": "0%"}[s.state]
			if s.sealed && s.state == "pending" {
				progress = "99%"
			}
			items = append(items, c.snapshotXML(s, progress))
		}
	}
	items, next, e := page(f, items, 5, 1000, ids)
	if e != nil {
		return nil, e
	}
	return struct {
		Snapshots []snapshotXML `xml:"snapshotSet>item"`
		NextToken string        `xml:"nextToken,omitempty"`
	}{items, next}, nil
}

func (c *Cloud) deleteSnapshot(f url.Values) (any, *ec2Error) {
	id := f.Get("SnapshotId")
	if id == "" {
		return nil, missing("SnapshotId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.removeSnapshot(id); e != nil {
		return nil, e
	}
	return returnTrue{true}, nil
}

// removeSnapshot deletes a snapshot no image uses, pending or not; c.mu is held.
func (c *Cloud) removeSnapshot(id string) *ec2Error {
	s := c.snapshots[id]
	if s == nil {
		return &ec2Error{http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '" + id + "' does not exist."}
	}
	for _, imID := range sortedKeys(c.images) {
		for _, d := range c.images[imID].bdms {
			if d.snapshot == id {
				return &ec2Error{http.StatusBadRequest, "InvalidSnapshot.InUse", "The snapshot " + id + " is currently in use by " + imID}
			}
		}
	}
	delete(c.snapshots, id)
	s.file.Close()
	_ = removeFile(s.file.Name())
	return nil
}

// tagsOfResource is the tag map of the resource with the ID id; c.mu is held.
func (c *Cloud) tagsOfResource(id string) (map[string]string, *ec2Error) {
	nf := func(code, msg string) (map[string]string, *ec2Error) {
		return nil, &ec2Error{http.StatusBadRequest, code, msg}
	}
	switch {
	case strings.HasPrefix(id, "i-"):
		if in := c.instances[id]; in != nil {
			return in.Tags, nil
		}
		return nf("InvalidInstanceID.NotFound", "The instance ID '"+id+"' does not exist")
	case strings.HasPrefix(id, "ami-"):
		if im := c.images[id]; im != nil {
			return im.Tags, nil
		}
		return nf("InvalidAMIID.NotFound", "The image id '["+id+"]' does not exist")
	case strings.HasPrefix(id, "snap-"):
		if s := c.snapshots[id]; s != nil {
			return s.tags, nil
		}
		return nf("InvalidSnapshot.NotFound", "The snapshot '"+id+"' does not exist.")
	case strings.HasPrefix(id, "vol-"):
		if v := c.volumes[id]; v != nil && !v.gone {
			return v.Tags, nil
		}
		return nf("InvalidVolume.NotFound", "The volume '"+id+"' does not exist.")
	case strings.HasPrefix(id, "eipalloc-"):
		if a := c.addresses[id]; a != nil {
			return a.tags, nil
		}
		return nf("InvalidAllocationID.NotFound", "The allocation ID '"+id+"' does not exist")
	}
	return nf("InvalidID", "The ID '"+id+"' is not valid")
}

func (c *Cloud) createTags(f url.Values) (any, *ec2Error) {
	return c.changeTags(f, func(tags map[string]string, change map[string]string, _ map[string]bool) {
		for k, v := range change {
			tags[k] = v
		}
	})
}

// deleteTags removes the tags named; a tag given with a value is removed only if it has that value.
func (c *Cloud) deleteTags(f url.Values) (any, *ec2Error) {
	return c.changeTags(f, func(tags map[string]string, change map[string]string, withValue map[string]bool) {
		for k, v := range change {
			if !withValue[k] || tags[k] == v {
				delete(tags, k)
			}
		}
	})
}

// changeTags applies apply to every resource of ResourceId.N once all of them are found.
func (c *Cloud) changeTags(f url.Values, apply func(tags, change map[string]string, withValue map[string]bool)) (any, *ec2Error) {
	ids := members(f, "ResourceId")
	if len(ids) == 0 {
		return nil, missing("ResourceId")
	}
	change := map[string]string{}
	withValue := map[string]bool{}
	for i := 1; i <= count(f, "Tag"); i++ {
		p := "Tag." + strconv.Itoa(i)
		k := f.Get(p + ".Key")
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, badParam("Tag key %q is not allowed", k)
		}
		change[k] = f.Get(p + ".Value")
		_, withValue[k] = f[p+".Value"]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []map[string]string
	for _, id := range ids {
		tags, e := c.tagsOfResource(id)
		if e != nil {
			return nil, e
		}
		all = append(all, tags)
	}
	for _, tags := range all {
		after := cloneTags(tags)
		apply(after, change, withValue)
		if len(after) > 50 {
			return nil, &ec2Error{http.StatusBadRequest, "TagLimitExceeded", "The maximum number of Tags for a resource has been reached."}
		}
	}
	for _, tags := range all {
		apply(tags, change, withValue)
	}
	return returnTrue{true}, nil
}
