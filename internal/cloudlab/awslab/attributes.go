package awslab

// EC2's DescribeInstanceAttribute and ModifyInstanceAttribute, for the userData attribute only (what
// drover's volume restore changes): the user-data of a stopped instance is replaced, and read back
// base64-encoded, as EC2 does. Other attributes are refused as unsupported by the lab.

import (
	"encoding/base64"
	"net/http"
	"net/url"
)

type userDataAttributeXML struct {
	InstanceID string `xml:"instanceId"`
	UserData   struct {
		Value string `xml:"value,omitempty"`
	} `xml:"userData"`
}

func (c *Cloud) describeInstanceAttribute(f url.Values) (any, *ec2Error) {
	id, attr := f.Get("InstanceId"), f.Get("Attribute")
	switch {
	case id == "":
		return nil, missing("InstanceId")
	case attr == "":
		return nil, missing("Attribute")
	case attr != "userData":
		return nil, badParam("Value (%s) for parameter attribute is not supported by the lab (only userData is)", attr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.instances[id]
	if in == nil {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
	}
	out := userDataAttributeXML{InstanceID: id}
	if len(in.UserData) > 0 {
		out.UserData.Value = base64.StdEncoding.EncodeToString(in.UserData)
	}
	return out, nil
}

func (c *Cloud) modifyInstanceAttribute(f url.Values) (any, *ec2Error) {
	id := f.Get("InstanceId")
	if id == "" {
		return nil, missing("InstanceId")
	}
	ud, ok := f["UserData.Value"]
	if !ok {
		return nil, badParam("the lab modifies only the userData attribute (UserData.Value)")
	}
	b, err := base64.StdEncoding.DecodeString(ud[0])
	if err != nil {
		return nil, badParam("Invalid BASE64 encoding of user data.")
	}
	if len(b) > 16<<10 {
		return nil, badParam("User data is limited to 16384 bytes")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.instances[id]
	switch {
	case in == nil:
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
	case in.State != "stopped":
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectInstanceState", "The instance '" + id + "' is not in the 'stopped' state."}
	}
	in.UserData = b
	return returnTrue{true}, nil
}
