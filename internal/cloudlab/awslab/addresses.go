package awslab

// EC2's Elastic IP actions for VPC addresses: AllocateAddress, DescribeAddresses,
// AssociateAddress, DisassociateAddress and ReleaseAddress. An Elastic IP is a loopback address
// on which the fake listens on Options.Ports and forwards each new connection to the instance
// the address is associated with at that moment (its own loopback address, where the Hypervisor
// forwards to the guest); with no association, or a holder not running, a connection is closed at
// once. AssociateAddress switches the target atomically: connections already open stay with the
// old holder, new ones go to the new one, as with EC2's address move.
//
// As on EC2, AssociateAddress refuses an address already associated with another instance with
// Resource.AlreadyAssociated unless AllowReassociation is true, and an instance holds at most one
// Elastic IP: associating a second one disassociates the first. Left out: network interfaces and
// private IP addresses as association targets, BYOIP pools, EC2-Classic.

import (
	"net/http"
	"net/netip"
	"net/url"
	"slices"

	"github.com/drover-dev/drover/internal/cloudlab/addrproxy"
)

// Address is what the fake knows of one Elastic IP, for tests.
type Address struct {
	AllocationID  string
	PublicIP      netip.Addr
	InstanceID    string // the instance it is associated with, if any
	AssociationID string
	Tags          map[string]string
}

type address struct {
	allocationID, associationID, instanceID string
	ip                                      netip.Addr
	tags                                    map[string]string
	proxy                                   *addrproxy.Proxy
}

// Addresses returns the Elastic IPs the fake holds.
func (c *Cloud) Addresses() []Address {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Address
	for _, id := range sortedKeys(c.addresses) {
		a := c.addresses[id]
		out = append(out, Address{a.allocationID, a.ip, a.instanceID, a.associationID, cloneTags(a.tags)})
	}
	return out
}

func (c *Cloud) allocateAddress(f url.Values) (any, *ec2Error) {
	if d := f.Get("Domain"); d != "" && d != "vpc" {
		return nil, badParam("Value (%s) for parameter domain is invalid.", d)
	}
	specs, e := tagSpecs(f, "elastic-ip")
	if e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ip, err := c.allocAddress()
	if err != nil {
		return nil, &ec2Error{http.StatusBadRequest, "AddressLimitExceeded", "The maximum number of addresses has been reached."}
	}
	a := &address{allocationID: newID("eipalloc"), ip: ip, tags: specs["elastic-ip"]}
	if a.tags == nil {
		a.tags = map[string]string{}
	}
	// The address reaches its instance while that runs; the proxy asks at each connection.
	a.proxy, err = addrproxy.Listen(ip, c.opts.Ports, func() netip.Addr {
		c.mu.Lock()
		defer c.mu.Unlock()
		if in := c.instances[a.instanceID]; in != nil && in.State == "running" {
			return in.PublicIP
		}
		return netip.Addr{}
	})
	if err != nil {
		c.t.Errorf("awslab: the proxy of Elastic IP %s: %v", ip, err)
		return nil, &ec2Error{http.StatusInternalServerError, "InternalError", "awslab: " + err.Error()}
	}
	c.addresses[a.allocationID] = a
	return struct {
		PublicIP           string `xml:"publicIp"`
		Domain             string `xml:"domain"`
		AllocationID       string `xml:"allocationId"`
		PublicIPv4Pool     string `xml:"publicIpv4Pool"`
		NetworkBorderGroup string `xml:"networkBorderGroup"`
	}{ip.String(), "vpc", a.allocationID, "amazon", c.opts.Region}, nil
}

type addressXML struct {
	PublicIP           string    `xml:"publicIp"`
	AllocationID       string    `xml:"allocationId"`
	Domain             string    `xml:"domain"`
	InstanceID         string    `xml:"instanceId,omitempty"`
	AssociationID      string    `xml:"associationId,omitempty"`
	NetworkInterfaceID string    `xml:"networkInterfaceId,omitempty"`
	OwnerID            string    `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIP          string    `xml:"privateIpAddress,omitempty"`
	TagSet             []tagItem `xml:"tagSet>item"`
	PublicIPv4Pool     string    `xml:"publicIpv4Pool"`
	NetworkBorderGroup string    `xml:"networkBorderGroup"`
}

func (c *Cloud) describeAddresses(f url.Values) (any, *ec2Error) {
	filters, e := filtersOf(f, "allocation-id", "association-id", "instance-id", "public-ip", "domain", "private-ip-address")
	if e != nil {
		return nil, e
	}
	allocs, ips := members(f, "AllocationId"), members(f, "PublicIp")
	c.mu.Lock()
	defer c.mu.Unlock()
	byIP := map[string]*address{}
	for _, a := range c.addresses {
		byIP[a.ip.String()] = a
	}
	for _, id := range allocs {
		if c.addresses[id] == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAllocationID.NotFound", "The allocation ID '" + id + "' does not exist"}
		}
	}
	for _, ip := range ips {
		if byIP[ip] == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAddress.NotFound", "Address '" + ip + "' not found."}
		}
	}
	var items []addressXML
	for _, id := range sortedKeys(c.addresses) {
		a := c.addresses[id]
		if (len(allocs) > 0 && !slices.Contains(allocs, id)) || (len(ips) > 0 && !slices.Contains(ips, a.ip.String())) {
			continue
		}
		x := addressXML{PublicIP: a.ip.String(), AllocationID: id, Domain: "vpc", TagSet: tagItems(a.tags),
			PublicIPv4Pool: "amazon", NetworkBorderGroup: c.opts.Region}
		if in := c.instances[a.instanceID]; in != nil {
			x.InstanceID, x.AssociationID, x.PrivateIP = in.ID, a.associationID, in.PrivateIP.String()
			x.NetworkInterfaceID, x.OwnerID = "eni-"+in.ID[2:], c.opts.Account
		}
		if !matches(filters, a.tags, func(name string) []string {
			return map[string][]string{"allocation-id": {id}, "association-id": {x.AssociationID}, "instance-id": {x.InstanceID},
				"public-ip": {x.PublicIP}, "domain": {"vpc"}, "private-ip-address": {x.PrivateIP}}[name]
		}) {
			continue
		}
		items = append(items, x)
	}
	return struct {
		Addresses []addressXML `xml:"addressesSet>item"`
	}{items}, nil
}

// addressOf finds the address AllocationId (or PublicIp) names; c.mu is held.
func (c *Cloud) addressOf(f url.Values) (*address, *ec2Error) {
	if id := f.Get("AllocationId"); id != "" {
		if a := c.addresses[id]; a != nil {
			return a, nil
		}
		return nil, &ec2Error{http.StatusBadRequest, "InvalidAllocationID.NotFound", "The allocation ID '" + id + "' does not exist"}
	}
	if ip := f.Get("PublicIp"); ip != "" {
		for _, a := range c.addresses {
			if a.ip.String() == ip {
				return a, nil
			}
		}
		return nil, &ec2Error{http.StatusBadRequest, "InvalidAddress.NotFound", "Address '" + ip + "' not found."}
	}
	return nil, missing("AllocationId")
}

func (c *Cloud) associateAddress(f url.Values) (any, *ec2Error) {
	if f.Get("NetworkInterfaceId") != "" || f.Get("PrivateIpAddress") != "" {
		return nil, badParam("awslab associates addresses with instances only (no NetworkInterfaceId or PrivateIpAddress)")
	}
	id := f.Get("InstanceId")
	if id == "" {
		return nil, missing("InstanceId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, e := c.addressOf(f)
	if e != nil {
		return nil, e
	}
	in := c.instances[id]
	switch {
	case in == nil:
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
	case in.State != "running" && in.State != "stopped":
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectInstanceState", "The instance '" + id + "' is not in a valid state for this operation."}
	case a.instanceID != "" && a.instanceID != id && f.Get("AllowReassociation") != "true":
		return nil, &ec2Error{http.StatusBadRequest, "Resource.AlreadyAssociated", "resource " + a.allocationID + " is already associated with associate-id " + a.associationID}
	}
	if old := c.instances[a.instanceID]; old != nil {
		old.eip = netip.Addr{}
	}
	for _, o := range c.addresses { // an instance holds one Elastic IP
		if o != a && o.instanceID == id {
			o.instanceID, o.associationID = "", ""
		}
	}
	a.instanceID, a.associationID, in.eip = id, newID("eipassoc"), a.ip
	return struct {
		AssociationID string `xml:"associationId"`
	}{a.associationID}, nil
}

func (c *Cloud) disassociateAddress(f url.Values) (any, *ec2Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a *address
	if assoc := f.Get("AssociationId"); assoc != "" {
		for _, o := range c.addresses {
			if o.associationID == assoc {
				a = o
			}
		}
		if a == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidAssociationID.NotFound", "The association ID '" + assoc + "' does not exist"}
		}
	} else {
		var e *ec2Error
		if a, e = c.addressOf(f); e != nil {
			return nil, e
		}
	}
	if in := c.instances[a.instanceID]; in != nil {
		in.eip = netip.Addr{}
	}
	a.instanceID, a.associationID = "", ""
	return returnTrue{true}, nil
}

func (c *Cloud) releaseAddress(f url.Values) (any, *ec2Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, e := c.addressOf(f)
	if e != nil {
		return nil, e
	}
	if a.instanceID != "" {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidIPAddress.InUse", "The address with allocation id [" + a.allocationID + "] is in use"}
	}
	a.proxy.Close()
	delete(c.addresses, a.allocationID)
	return returnTrue{true}, nil
}
