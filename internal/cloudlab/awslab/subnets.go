package awslab

// EC2's DescribeSubnets, for callers that need a subnet's zone: subnets are not resources here,
// so every well-formed subnet ID named is answered as a subnet of the one zone instances run in
// (region + "a"). A listing without IDs answers none.

import (
	"net/http"
	"net/url"
	"strings"
)

func (c *Cloud) describeSubnets(f url.Values) (any, *ec2Error) {
	type subnetXML struct {
		SubnetID string `xml:"subnetId"`
		State    string `xml:"state"`
		VpcID    string `xml:"vpcId"`
		Cidr     string `xml:"cidrBlock"`
		Zone     string `xml:"availabilityZone"`
		OwnerID  string `xml:"ownerId"`
	}
	var items []subnetXML
	for _, id := range members(f, "SubnetId") {
		if !strings.HasPrefix(id, "subnet-") {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidSubnetID.Malformed", "Invalid id: \"" + id + "\" (expecting \"subnet-...\")"}
		}
		items = append(items, subnetXML{id, "available", "vpc-0a1b2c3d4e5f60718", "172.31.0.0/16", c.opts.Region + "a", c.opts.Account})
	}
	return struct {
		Subnets []subnetXML `xml:"subnetSet>item"`
	}{items}, nil
}
