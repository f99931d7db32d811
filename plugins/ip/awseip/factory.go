package awseip

import (
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/ip"
)

// Factory is the awseip ip type, an Elastic IP moved between the instances of an aws compute block.
// Its config decodes, but it cannot move addresses yet (no Open): drover validate refuses it.
func Factory() ip.Factory {
	return ip.Factory{
		Type:      "awseip",
		Summary:   "an AWS Elastic IP",
		Computes:  []string{"aws"},
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
	}
}
