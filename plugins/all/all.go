// Package all is the one explicit registry of drover's providers. Nothing registers itself: each
// provider package exports a Factory function, and Builtin lists them, so adding a provider is its
// folder plus one line here. Only cmd/ imports this package.
package all

import (
	"fmt"
	"slices"
	"sort"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/compute/device"
	docompute "github.com/drover-dev/drover/plugins/compute/digitalocean"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/compute/vultr"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/cloudflare"
	"github.com/drover-dev/drover/plugins/dns/digitalocean"
	"github.com/drover-dev/drover/plugins/dns/rfc2136"
	"github.com/drover-dev/drover/plugins/dns/route53"
	"github.com/drover-dev/drover/plugins/dns/zonefile"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/awseip"
	doip "github.com/drover-dev/drover/plugins/ip/digitalocean"
	"github.com/drover-dev/drover/plugins/ip/loopback"
	ipvultr "github.com/drover-dev/drover/plugins/ip/vultr"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/etcd"
	"github.com/drover-dev/drover/plugins/store/local"
)

// Provider kinds, the first word of a provider block (the fleet's vault block is kind secrets).
const (
	KindCompute = "compute"
	KindDNS     = "dns"
	KindIP      = "ip"
	KindStore   = "store"
	KindSecrets = "secrets"
)

// Providers is a set of provider factories by kind.
type Providers struct {
	Compute []compute.Factory
	DNS     []dns.Factory
	IP      []ip.Factory
	Store   []store.Factory // the first is the store of a fleet without a store block
	Secrets []secrets.Factory
}

// Builtin lists every provider drover ships.
func Builtin() Providers {
	return Providers{
		Compute: []compute.Factory{qemu.Factory(), aws.Factory(), vultr.Factory(), docompute.Factory(), device.Factory()},
		DNS:     []dns.Factory{rfc2136.Factory(), cloudflare.Factory(), route53.Factory(), zonefile.Factory(), digitalocean.Factory()},
		IP:      []ip.Factory{loopback.Factory(), awseip.Factory(), doip.Factory(), ipvultr.Factory()},
		Store:   []store.Factory{local.Factory(), etcd.Factory()},
		Secrets: []secrets.Factory{vault.Factory()},
	}
}

// Entry describes one provider type, for lists and tests.
type Entry struct {
	Kind      string
	Type      string
	Summary   string
	Available bool   // false: the config decodes, but validate refuses blocks of this type
	Missing   string // for a type not available, what it lacks
	newConfig func(config.LookupEnv) (any, error)
}

// Registry is a set of factories with the environment their configs read. It implements
// fleet.ProviderCatalog. It is read-only once made, so safe for concurrent use.
type Registry struct {
	p       Providers
	env     config.LookupEnv
	entries []Entry
}

// New returns the registry of the built-in providers and those of extra (tests add a type of their
// own this way), reading provider environment variables through env. A type registered twice in one
// kind is a programming error: New panics, naming it.
func New(env config.LookupEnv, extra ...Providers) *Registry {
	p := Builtin()
	for _, x := range extra {
		p.Compute = append(p.Compute, x.Compute...)
		p.DNS = append(p.DNS, x.DNS...)
		p.IP = append(p.IP, x.IP...)
		p.Store = append(p.Store, x.Store...)
		p.Secrets = append(p.Secrets, x.Secrets...)
	}
	r := &Registry{p: p, env: env}
	for _, f := range p.Compute {
		r.add(KindCompute, f.Type, f.Summary, f.Available(), f.NewConfig, f.Missing)
	}
	for _, f := range p.DNS {
		r.add(KindDNS, f.Type, f.Summary, f.Available(), f.NewConfig, f.Missing)
	}
	for _, f := range p.IP {
		r.add(KindIP, f.Type, f.Summary, f.Available(), f.NewConfig, "")
	}
	for _, f := range p.Store {
		r.add(KindStore, f.Type, f.Summary, f.Available(), f.NewConfig, f.Missing)
	}
	for _, f := range p.Secrets {
		r.add(KindSecrets, f.Type, f.Summary, f.Available(), f.NewConfig, f.Missing)
	}
	return r
}

func (r *Registry) add(kind, typ, summary string, available bool, newConfig func(config.LookupEnv) (any, error), missing string) {
	if typ == "" || newConfig == nil {
		panic(fmt.Sprintf("plugins/all: a %s factory without a type or a NewConfig (%q)", kind, typ))
	}
	if _, dup := r.entry(kind, typ); dup {
		panic(fmt.Sprintf("plugins/all: %s provider type %q is registered twice", kind, typ))
	}
	r.entries = append(r.entries, Entry{Kind: kind, Type: typ, Summary: summary, Available: available, Missing: missing, newConfig: newConfig})
}

func (r *Registry) entry(kind, typ string) (Entry, bool) {
	for _, e := range r.entries {
		if e.Kind == kind && e.Type == typ {
			return e, true
		}
	}
	return Entry{}, false
}

// Entries lists every provider type, in registry order.
func (r *Registry) Entries() []Entry { return slices.Clone(r.entries) }

// NewConfig implements fleet.ProviderCatalog.
func (r *Registry) NewConfig(kind, typ string) (any, bool, error) {
	e, ok := r.entry(kind, typ)
	if !ok {
		return nil, false, nil
	}
	cfg, err := e.newConfig(r.env)
	return cfg, true, err
}

// Missing says what a type that is not available lacks ("" when it says nothing); validate quotes it.
func (r *Registry) Missing(kind, typ string) string {
	e, _ := r.entry(kind, typ)
	return e.Missing
}

// Types implements fleet.ProviderCatalog: every type of a kind, sorted.
func (r *Registry) Types(kind string) []string {
	return r.types(kind, func(Entry) bool { return true })
}

// Available implements fleet.ProviderCatalog: the types of a kind that can do their job, sorted.
func (r *Registry) Available(kind string) []string {
	return r.types(kind, func(e Entry) bool { return e.Available })
}

func (r *Registry) types(kind string, keep func(Entry) bool) []string {
	var out []string
	for _, e := range r.entries {
		if e.Kind == kind && keep(e) {
			out = append(out, e.Type)
		}
	}
	sort.Strings(out)
	return out
}

// IPComputes implements fleet.ProviderCatalog: the compute types an ip type moves addresses
// between.
func (r *Registry) IPComputes(ipType string) []string {
	f, ok := r.IP(ipType)
	if !ok {
		return nil
	}
	return slices.Clone(f.Computes)
}

// DefaultStore is the store type of a fleet without a store block.
func (r *Registry) DefaultStore() string { return r.p.Store[0].Type }

// Compute returns the factory of a compute type.
func (r *Registry) Compute(typ string) (compute.Factory, bool) { return find(r.p.Compute, typ) }

// DNS returns the factory of a dns type.
func (r *Registry) DNS(typ string) (dns.Factory, bool) { return find(r.p.DNS, typ) }

// IP returns the factory of an ip type.
func (r *Registry) IP(typ string) (ip.Factory, bool) {
	i := slices.IndexFunc(r.p.IP, func(f ip.Factory) bool { return f.Type == typ })
	if i < 0 {
		return ip.Factory{}, false
	}
	return r.p.IP[i], true
}

// Store returns the factory of a store type.
func (r *Registry) Store(typ string) (store.Factory, bool) { return find(r.p.Store, typ) }

// Secrets returns the factory of a secrets type.
func (r *Registry) Secrets(typ string) (secrets.Factory, bool) { return find(r.p.Secrets, typ) }

func find[P any](fs []config.Factory[P], typ string) (config.Factory[P], bool) {
	i := slices.IndexFunc(fs, func(f config.Factory[P]) bool { return f.Type == typ })
	if i < 0 {
		return config.Factory[P]{}, false
	}
	return fs[i], true
}
