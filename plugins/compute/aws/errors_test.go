package aws

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func apiErr(code string) error {
	return fmt.Errorf("operation failed: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
}

func TestErrorClassification(t *testing.T) {
	for _, code := range []string{"InsufficientInstanceCapacity", "InstanceLimitExceeded", "Unsupported", "VcpuLimitExceeded"} {
		if !launchRefusal(apiErr(code)) {
			t.Errorf("%s is not a launch refusal", code)
		}
	}
	for _, code := range []string{"RequestLimitExceeded", "InvalidInstanceID.NotFound", "InternalError", ""} {
		if launchRefusal(apiErr(code)) {
			t.Errorf("%q is a launch refusal", code)
		}
	}
	if !notFound(apiErr("InvalidInstanceID.NotFound")) || !notFound(apiErr("InvalidInstanceID.Malformed")) || !notFound(&notFoundError{id: "i-1"}) {
		t.Error("instance not-found codes are not recognized")
	}
	if notFound(apiErr("InvalidAMIID.NotFound")) || notFound(errors.New("plain")) {
		t.Error("other errors count as instance not found")
	}
	if !imageGone(apiErr("InvalidSnapshot.NotFound")) || !imageGone(apiErr("InvalidAMIID.NotFound")) || imageGone(apiErr("AuthFailure")) {
		t.Error("imageGone misclassifies")
	}
}
