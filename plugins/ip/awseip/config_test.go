package awseip

import (
	"errors"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

func TestConfigValidate(t *testing.T) {
	if err := (&Config{AllocationID: "eipalloc-0123456789abcdef0"}).Validate(); err != nil {
		t.Errorf("a valid allocation: %v", err)
	}
	for _, bad := range []string{"", "203.0.113.7", "eip-1"} {
		var ae *config.AttrError
		if err := (&Config{AllocationID: bad}).Validate(); !errors.As(err, &ae) || ae.Attribute() != "allocation_id" {
			t.Errorf("allocation_id %q: Validate = %v, want an error about allocation_id", bad, err)
		}
	}
}
