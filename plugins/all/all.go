// Package all is the one explicit registry of drover's providers. Nothing registers itself: adding a
// provider means adding a line here, and only cmd/ imports this package.
package all

import (
	"sort"

	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/compute/vultr"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
	"github.com/drover-dev/drover/plugins/dns/route53"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
	"github.com/drover-dev/drover/plugins/ip/awseip"
	"github.com/drover-dev/drover/plugins/ip/loopback"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/store/local"
)

// Entry is one provider type of one kind.
type Entry struct {
	Kind    string // compute, dns, ip, store, secrets
	Type    string // the first label of its block, such as "qemu"
	Summary string
	// NewConfig returns the provider's Config with defaults and environment applied.
	NewConfig func(env config.LookupEnv) (any, error)
}

// Registry lists the providers drover knows. It implements fleet.ProviderCatalog.
type Registry struct {
	entries []Entry
	env     config.LookupEnv
}

// New returns the registry of every provider, reading provider environment variables through env.
func New(env config.LookupEnv) *Registry {
	ok := func(v any) (any, error) { return v, nil }
	return &Registry{env: env, entries: []Entry{
		{"compute", "qemu", "VMs on this machine (the local lab)", func(e config.LookupEnv) (any, error) { return ok(qemu.NewDefaultConfig(e)) }},
		{"compute", "aws", "Amazon EC2", func(e config.LookupEnv) (any, error) { return ok(aws.NewDefaultConfig(e)) }},
		{"compute", "vultr", "Vultr cloud compute", func(e config.LookupEnv) (any, error) { return vultr.NewDefaultConfig(e) }},
		{"dns", "rfc2136", "RFC 2136 dynamic updates with TSIG (Knot, BIND, PowerDNS)", func(e config.LookupEnv) (any, error) { return rfc2136.NewDefaultConfig(e) }},
		{"dns", "cloudflare", "Cloudflare DNS", func(e config.LookupEnv) (any, error) { return cloudflare.NewDefaultConfig(e) }},
		{"dns", "route53", "Amazon Route 53", func(e config.LookupEnv) (any, error) { return ok(route53.NewDefaultConfig(e)) }},
		{"dns", "zonefile", "a zone file and a reload command (NSD)", func(e config.LookupEnv) (any, error) { return ok(zonefile.NewDefaultConfig(e)) }},
		{"ip", "loopback", "a loopback failover address (the local lab)", func(e config.LookupEnv) (any, error) { return ok(loopback.NewDefaultConfig(e)) }},
		{"ip", "awseip", "an AWS Elastic IP", func(e config.LookupEnv) (any, error) { return ok(awseip.NewDefaultConfig(e)) }},
		{"store", "local", "a bbolt file under the state directory", func(e config.LookupEnv) (any, error) { return &local.Config{}, nil }},
		{"secrets", "vault", "HashiCorp Vault", func(e config.LookupEnv) (any, error) { return vault.NewDefaultConfig(e) }},
	}}
}

// Entries lists every provider, in registry order.
func (r *Registry) Entries() []Entry { return append([]Entry(nil), r.entries...) }

// NewConfig implements fleet.ProviderCatalog.
func (r *Registry) NewConfig(kind, typ string) (any, bool, error) {
	for _, e := range r.entries {
		if e.Kind == kind && e.Type == typ {
			cfg, err := e.NewConfig(r.env)
			return cfg, true, err
		}
	}
	return nil, false, nil
}

// Types implements fleet.ProviderCatalog.
func (r *Registry) Types(kind string) []string {
	var out []string
	for _, e := range r.entries {
		if e.Kind == kind {
			out = append(out, e.Type)
		}
	}
	sort.Strings(out)
	return out
}
