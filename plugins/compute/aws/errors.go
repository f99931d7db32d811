package aws

import (
	"errors"
	"strings"

	"github.com/aws/smithy-go"
)

// errorCode is the AWS error code of err ("InvalidInstanceID.NotFound"), or "".
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// notFound reports whether err says an instance does not exist (or its ID cannot be one).
func notFound(err error) bool {
	switch errorCode(err) {
	case "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed":
		return true
	}
	return false
}

// launchRefusal reports whether err is EC2 refusing to start the instance at all, for capacity,
// quota or support reasons: nothing was started, and a retry now would likely fail the same way.
func launchRefusal(err error) bool {
	switch code := errorCode(err); {
	case code == "InsufficientInstanceCapacity", code == "InsufficientHostCapacity",
		code == "InsufficientCapacity", code == "InstanceLimitExceeded",
		code == "VcpuLimitExceeded", code == "Unsupported", code == "UnsupportedOperation",
		code == "InsufficientFreeAddressesInSubnet", code == "MaxSpotInstanceCountExceeded":
		return true
	case strings.HasPrefix(code, "InsufficientInstanceCapacity"):
		return true
	}
	return false
}

// imageGone reports whether err says an AMI or snapshot does not exist (any more).
func imageGone(err error) bool {
	switch errorCode(err) {
	case "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound", "ResourceNotFoundException":
		return true
	}
	return false
}
