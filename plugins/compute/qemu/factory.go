package qemu

import (
	"context"
	"net/netip"
	"path/filepath"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/config"
)

var (
	_ compute.PortForwarder = (*Provider)(nil)
	_ compute.HostRouter    = (*Provider)(nil)
)

// Factory is the qemu compute type: VMs on this machine, the local lab.
func Factory() compute.Factory {
	return compute.Factory{
		Type:      "qemu",
		Summary:   "VMs on this machine (the local lab)",
		NewConfig: func(env config.LookupEnv) (any, error) { return NewDefaultConfig(env), nil },
		Open: func(_ context.Context, cfg any, env config.Env) (compute.Provider, error) {
			c, err := config.As[Config]("qemu", cfg)
			if err != nil {
				return nil, err
			}
			dir := env.StateDir
			if c.Dir != "" {
				dir = c.Dir
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(env.FleetDir, dir)
				}
			}
			return New(c, dir)
		},
	}
}

// PortForwards implements compute.PortForwarder through the instance's QMP monitor.
func (p *Provider) PortForwards(ctx context.Context, id string) (compute.ForwardSession, error) {
	return p.Monitor(ctx, id)
}

// slirpGateway is where a guest of qemu's user-mode network reaches the host.
var slirpGateway = netip.MustParseAddr("10.0.2.2")

// RouteToHost implements compute.HostRouter: a guest reaches the host's loopback through its
// user-mode network's gateway, and qemu makes those connections from 127.0.0.1 on the host.
func (p *Provider) RouteToHost(addr netip.Addr) (netip.Addr, []netip.Prefix, bool) {
	if !addr.IsLoopback() {
		return netip.Addr{}, nil, false
	}
	return slirpGateway, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true
}
