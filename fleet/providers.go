package fleet

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var baseSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "suite"}, {Name: "mirror"}, {Name: "snapshot"}, {Name: "arch"}, {Name: "components"}, {Name: "packages"},
	{Name: "security_mirror"}, {Name: "updates"}, {Name: "updates_off_reason"}, {Name: "keyring"},
}, Blocks: []hcl.BlockHeaderSchema{{Type: "repository", LabelNames: []string{"name"}}}}

// Architectures that images can be built for.
var Architectures = []string{"amd64", "arm64"}

// DefaultBase is the base a role gets when it names "debian-bookworm" and the fleet declares no base
// of that name, so a small fleet needs no base block at all.
func DefaultBase() *Base {
	return &Base{Name: "debian-bookworm", Suite: "bookworm", Mirror: "http://deb.debian.org/debian",
		Arch: "amd64", Components: []string{"main"}}
}

var snapshotPattern = regexp.MustCompile(`^\d{8}T\d{6}Z$`)

func (d *decoder) decodeBases(f *Fleet, blocks hcl.Blocks, opts Options) []*Base {
	var bases []*Base
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate base", "A base named %q was already declared at %s.", name, pos(prev))
			continue
		}
		seen[name] = b.DefRange
		c := d.content(b.Body, baseSchema)
		base := DefaultBase()
		base.Name, base.Range = name, b.DefRange
		if d.str(c.Attributes, "suite", &base.Suite) && !debianSuite.MatchString(base.Suite) {
			d.errorf(c.Attributes["suite"].Expr.Range(), "Invalid suite",
				"\"suite\" is a Debian suite or codename such as \"bookworm\" or \"bookworm-backports\", got %q.", base.Suite)
		}
		if d.str(c.Attributes, "mirror", &base.Mirror) {
			if u, err := url.Parse(base.Mirror); err != nil || strings.ContainsFunc(base.Mirror, unicode.IsSpace) || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
				d.errorf(c.Attributes["mirror"].Expr.Range(), "Invalid mirror",
					"\"mirror\" must be an http://, https:// or file:// URL of a Debian archive, got %q.", base.Mirror)
			}
		}
		if d.str(c.Attributes, "snapshot", &base.Snapshot) && !snapshotPattern.MatchString(base.Snapshot) {
			d.errorf(c.Attributes["snapshot"].Expr.Range(), "Invalid snapshot",
				"\"snapshot\" must be a snapshot.debian.org timestamp such as \"20261101T000000Z\", got %q.", base.Snapshot)
		}
		if d.str(c.Attributes, "arch", &base.Arch) {
			d.oneOf(c.Attributes, "arch", base.Arch, Architectures...)
		}
		if d.strings(c.Attributes, "components", &base.Components) {
			d.checkNames(c.Attributes, "components", base.Components, debianComponent, "archive area")
		}
		if d.strings(c.Attributes, "packages", &base.Packages) {
			d.checkNames(c.Attributes, "packages", base.Packages, debianPackage, "package")
		}
		d.decodeBaseUpdates(c, base)
		d.decodeBaseKeyring(f, c, base, opts)
		base.Repositories = d.decodeRepositories(f, c.Blocks, opts)
		bases = append(bases, base)
	}
	return bases
}

// decodeProviders decodes provider blocks of one kind: the first label is the provider type, the
// second the name that roles refer to.
func (d *decoder) decodeProviders(kind string, blocks hcl.Blocks, opts Options) []*Provider {
	var out []*Provider
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		typ, name := b.Labels[0], b.Labels[1]
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[1], "Duplicate "+kind+" block", "A %s block named %q was already declared at %s.", kind, name, pos(prev))
			continue
		}
		seen[name] = b.DefRange
		if !validName(name) {
			d.errorf(b.LabelRanges[1], "Invalid name", "Name %q must start with a letter and contain only letters, digits, _ and -.", name)
		}
		if p := d.decodeProvider(kind, typ, name, b, b.LabelRanges[0], opts); p != nil {
			out = append(out, p)
		} else {
			d.declaredBroken[kind+"/"+name] = true // reported once here, not again at each use
		}
	}
	return out
}

// decodeSingleProvider decodes the store and vault blocks, of which a fleet has at most one.
func (d *decoder) decodeSingleProvider(kind string, blocks hcl.Blocks, opts Options) *Provider {
	if len(blocks) == 0 {
		return nil
	}
	for _, extra := range blocks[1:] {
		d.errorf(extra.DefRange, "Duplicate "+extra.Type+" block", "Only one %s block is allowed; the first is at %s.", extra.Type, pos(blocks[0].DefRange))
	}
	b := blocks[0]
	typ, typRange := b.Type, b.DefRange // vault { ... } has no type label: its type is "vault"
	if len(b.Labels) > 0 {
		typ, typRange = b.Labels[0], b.LabelRanges[0]
	}
	return d.decodeProvider(kind, typ, typ, b, typRange, opts)
}

func (d *decoder) decodeProvider(kind, typ, name string, b *hcl.Block, typRange hcl.Range, opts Options) *Provider {
	if opts.Providers == nil {
		d.errorf(b.DefRange, "No provider catalog", "drover was built without a provider catalog; this is a bug.")
		return nil
	}
	cfg, known, err := opts.Providers.NewConfig(kind, typ)
	if err != nil {
		d.errorf(b.DefRange, "Cannot read "+b.Type+" settings from the environment", "%s.", err)
		return nil
	}
	if !known {
		types := opts.Providers.Available(kind)
		d.errorf(typRange, "Unknown "+b.Type+" provider type",
			"There is no %s provider of type %q. Available types: %s.%s", b.Type, typ, quoteList(types), didYouMean(typ, types))
		return nil
	}
	p := &Provider{Kind: kind, Type: typ, Name: name, Config: cfg, Range: b.DefRange, typeRange: typRange}
	if available := opts.Providers.Available(kind); !contains(available, typ) {
		// Still declared, so that roles using the block are not also told it does not exist.
		missing := ""
		if m, ok := opts.Providers.(interface{ Missing(kind, typ string) string }); ok && m.Missing(kind, typ) != "" {
			missing = " " + m.Missing(kind, typ)
		}
		d.errorf(typRange, "Provider not available yet",
			"The %s provider type %q is not available yet: its settings are read, but it cannot do its job, so a rollout on it would fail.%s Available %s types: %s.",
			b.Type, typ, missing, b.Type, quoteList(available))
		return p
	}
	body := b.Body
	if kind == KindIP {
		body = d.decodeIPCompute(p, body)
	}
	diags := gohcl.DecodeBody(body, d.ctx, cfg)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			d.providerError(b, err)
			return nil
		}
	}
	return p
}

var ipComputeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "compute"}}}

// decodeIPCompute takes an ip block's compute attribute (every ip type has it) and returns the rest
// of the body for the provider's own config.
func (d *decoder) decodeIPCompute(p *Provider, body hcl.Body) hcl.Body {
	c, rest, diags := body.PartialContent(ipComputeSchema)
	d.diags = append(d.diags, diags...)
	if d.str(c.Attributes, "compute", &p.Compute) {
		rng := c.Attributes["compute"].Expr.Range()
		p.computeRange = &rng
	}
	return rest
}

// checkIPComputes resolves each ip block's compute block and checks the pair is one the ip type
// supports: a failover address moves only between instances of a platform that can hold it.
func (d *decoder) checkIPComputes(f *Fleet, opts Options) {
	for _, p := range f.IP {
		supported := opts.Providers.IPComputes(p.Type)
		if p.Compute == "" {
			var candidates []string
			for _, c := range f.Compute {
				if contains(supported, c.Type) {
					candidates = append(candidates, c.Name)
				}
			}
			switch len(candidates) {
			case 1:
				p.Compute = candidates[0]
			case 0:
				d.errorf(p.typeRange, "No compute block for this address",
					"An ip %q block moves its address between instances of a compute block of type %s; the fleet declares none.",
					p.Type, quoteList(supported))
			default:
				d.errorf(p.Range, "Which compute block?",
					"ip %q can move between the instances of %s; name one: compute = %q.", p.Name, quoteList(candidates), candidates[0])
			}
			continue
		}
		c := f.Provider(KindCompute, p.Compute)
		switch {
		case c == nil:
			d.errorf(*p.computeRange, "Reference to undeclared compute",
				"ip %q refers to compute %q, which is not declared (declared: %s).%s", p.Name, p.Compute, quoteList(names(f.Compute)), didYouMean(p.Compute, names(f.Compute)))
		case !contains(supported, c.Type):
			d.errorf(*p.computeRange, "Address cannot move there",
				"An ip %q address moves between instances of compute types %s; compute %q is of type %q.", p.Type, quoteList(supported), c.Name, c.Type)
		}
	}
}

// providerError reports a provider's Validate error, at the offending attribute when the error names
// one through an Attribute() method.
func (d *decoder) providerError(b *hcl.Block, err error) {
	rng := b.DefRange
	var attrErr interface{ Attribute() string }
	if errors.As(err, &attrErr) {
		if body, ok := b.Body.(*hclsyntax.Body); ok {
			if a, ok := body.Attributes[attrErr.Attribute()]; ok {
				rng = a.Expr.Range()
			}
		}
	}
	d.errorf(rng, fmt.Sprintf("Invalid %s configuration", b.Type), "%s.", err)
}
