package fleet

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// ProviderCatalog tells the decoder which provider types exist and gives each one's config struct.
// plugins/all implements it; the fleet package never imports a provider.
type ProviderCatalog interface {
	// NewConfig returns a pointer to a fresh Config of the provider, with its defaults (including those
	// read from its namespaced environment variables) already applied, ready for gohcl to decode a block
	// on top. known is false for an unknown kind or type; err reports an unreadable environment (a
	// NAME_FILE that cannot be read).
	NewConfig(kind, typ string) (cfg any, known bool, err error)
	// Types lists the provider types of a kind, sorted.
	Types(kind string) []string
	// Available lists the types of a kind that can do their job, sorted. A block of a known type
	// that is not available (its config decodes, the provider is not built yet) is refused.
	Available(kind string) []string
	// IPComputes lists the compute types whose instances an ip type moves its address between.
	IPComputes(ipType string) []string
}

// Options are the inputs of Load besides the file.
type Options struct {
	Providers ProviderCatalog
	// Deploy names the strategies, health check and cutover types deploy blocks may use, and what
	// each strategy admits (cmd passes rollout's registries).
	Deploy    DeployCatalog
	Vars      map[string]string                 // --var NAME=VALUE
	LookupEnv func(string) (string, bool)       // defaults to os.LookupEnv
	Stat      func(string) (os.FileInfo, error) // defaults to os.Stat
}

func (o Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (o Options) stat(path string) (os.FileInfo, error) {
	if o.Stat != nil {
		return o.Stat(path)
	}
	return os.Stat(path)
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "drover"},
	{Type: "variable", LabelNames: []string{"name"}},
	{Type: "base", LabelNames: []string{"name"}},
	{Type: "role", LabelNames: []string{"name"}},
	{Type: "compute", LabelNames: []string{"type", "name"}},
	{Type: "dns", LabelNames: []string{"type", "name"}},
	{Type: "ip", LabelNames: []string{"type", "name"}},
	{Type: "store", LabelNames: []string{"type"}},
	{Type: "vault"},
}}

var droverSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "name"}, {Name: "state_dir"}, {Name: "keep_images"}}}

// DefaultKeepImages is how many images per role a build keeps when the drover block does not say:
// the newest, the one before it to roll back to, and one more.
const DefaultKeepImages = 3

// Load reads, decodes and validates the fleet file at path. On any error the fleet is nil and the
// diagnostics hold every problem found, each with its source range; path is used as given in them.
func Load(path string, opts Options) (*Fleet, *Diagnostics) {
	parser := hclparse.NewParser()
	report := &Diagnostics{Files: parser.Files()}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	src, err := readRegularFile(path, MaxFleetFileSize)
	if err != nil {
		report.Diags = hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read fleet file",
			Detail:   err.Error() + ". Point --fleet (or DROVER_FLEET) at your drover.hcl.",
		}}
		return nil, report
	}
	return loadSource(parser, report, src, path, abs, opts)
}

// loadSource decodes the fleet file's content src, read from path (abs is its absolute form).
func loadSource(parser *hclparse.Parser, report *Diagnostics, src []byte, path, abs string, opts Options) (*Fleet, *Diagnostics) {
	if diags := checkShape(src, path); diags.HasErrors() {
		// Not parsed: the parser would recurse too deep. The source is kept for the diagnostics.
		parser.Files()[path] = &hcl.File{Bytes: src}
		report.Diags = diags
		return nil, report
	}
	file, diags := parser.ParseHCL(src, path)
	if diags.HasErrors() {
		report.Diags = pointAtOpenings(src, path, diags)
		return nil, report
	}

	f := &Fleet{Path: abs, Dir: filepath.Dir(abs), Name: filepath.Base(filepath.Dir(abs)), KeepImages: DefaultKeepImages, shownDir: filepath.Dir(path)}
	d := &decoder{ctx: &hcl.EvalContext{Functions: functions(f.Dir, opts.lookupEnv)}, deploy: opts.Deploy, declaredBroken: map[string]bool{}, files: parser.Files()}
	d.diags = diags
	root := d.content(file.Body, rootSchema)
	byType := map[string]hcl.Blocks{}
	for _, b := range root.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}

	f.Variables = d.decodeVariables(byType["variable"], opts)
	d.ctx.Variables = map[string]cty.Value{"var": objectOf(f.Variables)}

	d.decodeDrover(f, byType["drover"])
	f.Bases = d.decodeBases(f, byType["base"], opts)
	f.Compute = d.decodeProviders(KindCompute, byType["compute"], opts)
	f.DNS = d.decodeProviders(KindDNS, byType["dns"], opts)
	f.IP = d.decodeProviders(KindIP, byType["ip"], opts)
	f.Store = d.decodeSingleProvider(KindStore, byType["store"], opts)
	f.Vault = d.decodeSingleProvider(KindSecrets, byType["vault"], opts)
	f.Roles = d.decodeRoles(f, byType["role"], opts)
	d.checkIPComputes(f, opts)
	d.checkReferences(f)

	report.Diags = dropEchoes(d.diags)
	sortDiagnostics(report.Diags)
	if report.Diags.HasErrors() {
		return nil, report
	}
	return f, report
}

func (d *decoder) decodeDrover(f *Fleet, blocks hcl.Blocks) {
	for i, b := range blocks {
		if i > 0 {
			d.errorf(b.DefRange, "Duplicate drover block", "Only one drover block is allowed; the first is at %s.", pos(blocks[0].DefRange))
			continue
		}
		c := d.content(b.Body, droverSchema)
		d.str(c.Attributes, "name", &f.Name)
		d.integer(c.Attributes, "keep_images", 0, 1000, &f.KeepImages)
		var state string
		if d.str(c.Attributes, "state_dir", &state) {
			f.StateDir = resolvePath(f.Dir, state)
		}
	}
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// sortDiagnostics orders diagnostics by position so output is stable and reads top to bottom.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Byte != b.Start.Byte:
			return a.Start.Byte < b.Start.Byte
		}
		return false
	})
}
