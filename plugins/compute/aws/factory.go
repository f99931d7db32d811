package aws

import (
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

// Factory is the aws compute type. Its config decodes, but it cannot launch instances yet (no Open):
// drover validate refuses an aws block until it can.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "aws",
		Summary:   "Amazon EC2",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
	}
}
