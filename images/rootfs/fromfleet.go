package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
	"github.com/drover-dev/drover/plugins/store"
)

// ErrNotYet marks roles this builder cannot bake yet; drover build reports them in one line and goes
// on with the others.
var ErrNotYet = errors.New("not supported yet")

// DefaultEpoch is SOURCE_DATE_EPOCH when neither the environment nor a base snapshot gives one: a
// fixed time, so that equal inputs give equal bytes.
var DefaultEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Options are what a build needs besides the fleet.
type Options struct {
	StateDir      string
	CacheDir      string // base trees and .debs; default STATE/cache
	DroverVersion string
	AgentDir      string // where drover-boot-linux-ARCH binaries are
	Epoch         time.Time
	Force         bool
	// Refresh asks the mirror again which versions it offers for the packages of each role's newest
	// image (drover build --refresh): a role gets a new image exactly when one of them changed.
	// Without it, a role whose fleet inputs did not change keeps the package versions it has.
	Refresh  bool
	Progress Progress
	// Store, when set, is the state store a team shares: the catalog records its images there and a
	// build is skipped when the store's catalog covers it (Request.Deploys).
	Store store.Store
	// Context bounds the store's operations made by the catalog.
	Context context.Context
	// Logger hears what a person should know but that does not stop a build, such as a
	// third-party repository answered from its last verified offers. nil discards it.
	Logger *slog.Logger
}

// AgentPath is the drover-boot binary for an architecture in a directory.
func AgentPath(dir, arch string) string { return filepath.Join(dir, "drover-boot-linux-"+arch) }

// EpochFromEnv reads SOURCE_DATE_EPOCH (seconds since 1970); ok is false when unset.
func EpochFromEnv(lookup func(string) (string, bool)) (time.Time, bool, error) {
	v, ok := lookup("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("rootfs: SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
	}
	return time.Unix(n, 0).UTC(), true, nil
}

// NewRequest turns a role of the fleet into a build request. Roles that need a builder that is not
// here yet return an error wrapping ErrNotYet.
// A build of several roles shares one Identifier instead (Identifier.Request), so that the
// catalog is read and each mirror asked once for all of them.
func NewRequest(f *fleet.Fleet, role *fleet.Role, opts Options) (Request, error) {
	return NewIdentifier(opts).Request(f, role)
}

// Identifier says which image a build of a role would make, without building: the identity
// drover build gives it for the fleet as it is now (with opts.Refresh, as drover build --refresh
// would). It hashes each agent binary once, reads the catalog once and asks a mirror once, so it
// is cheap for many roles. It is safe for concurrent use.
type Identifier struct {
	opts   Options
	mu     sync.Mutex
	sums   map[string]string
	listed []*images.Manifest
	listOK bool
	offers map[string]map[string]string // by the base spec's sources, and the repositories'
}

// NewIdentifier returns an Identifier for builds made with opts.
func NewIdentifier(opts Options) *Identifier {
	return &Identifier{opts: opts, sums: map[string]string{}, offers: map[string]map[string]string{}}
}

// Identity is the identity of role's image for the fleet as it is now.
func (id *Identifier) Identity(f *fleet.Fleet, role *fleet.Role) (string, error) {
	req, err := id.Request(f, role)
	if err != nil {
		return "", err
	}
	return req.Identity(), nil
}

// Request is the build request of role that Identity is the identity of; its Refresh says what a
// refresh found.
func (id *Identifier) Request(f *fleet.Fleet, role *fleet.Role) (Request, error) {
	req, err := newRequest(f, role, id.opts, id.agentSum, id.repositoryOffers)
	if err != nil {
		return req, err
	}
	p := pinner{list: func() ([]*images.Manifest, error) { return id.list(req.Catalog) }, candidates: id.candidates(req.Cache)}
	return req, p.pin(contextOf(id.opts), &req, id.opts.Refresh)
}

// Refresh says whether the requests ask the mirrors again (Options.Refresh).
func (id *Identifier) Refresh() bool { return id.opts.Refresh }

func (id *Identifier) list(cat *images.Catalog) ([]*images.Manifest, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if !id.listOK {
		all, err := cat.List()
		if err != nil {
			return nil, err
		}
		id.listed, id.listOK = all, true
	}
	return id.listed, nil
}

func (id *Identifier) candidates(cache *tree.Cache) func(context.Context, tree.BaseSpec, []tree.Repository) (map[string]string, error) {
	return func(ctx context.Context, spec tree.BaseSpec, repos []tree.Repository) (map[string]string, error) {
		key := fmt.Sprint(spec.Arch, spec.Components, spec.Sources(), repositoriesKey(repos))
		id.mu.Lock()
		defer id.mu.Unlock() // one mirror question at a time: the others want the same answer
		if offer, ok := id.offers[key]; ok {
			return offer, nil
		}
		offer, err := cache.Candidates(ctx, spec, repos...)
		if err == nil {
			id.offers[key] = offer
		}
		return offer, err
	}
}

func contextOf(opts Options) context.Context {
	if opts.Context != nil {
		return opts.Context
	}
	return context.Background()
}

func (id *Identifier) agentSum(path string) (string, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if s, ok := id.sums[path]; ok {
		return s, nil
	}
	s, err := images.FileSHA256(path)
	if err == nil {
		id.sums[path] = s
	}
	return s, err
}

func newRequest(f *fleet.Fleet, role *fleet.Role, opts Options, agentSHA256 func(string) (string, error), offers offersFunc) (Request, error) {
	base, err := images.ResolveBase(f, role)
	if err != nil {
		return Request{}, err
	}
	agent := AgentPath(opts.AgentDir, base.Arch)
	agentSum, err := agentSHA256(agent)
	if err != nil {
		return Request{}, fmt.Errorf("rootfs: the drover-boot agent for %s: %w (go tool task build makes it; DROVER_BOOT_DIR points at it)", base.Arch, err)
	}
	in, err := images.ComputeInputs(f, role, opts.DroverVersion, agentSum)
	if err != nil {
		return Request{}, err
	}
	epoch := opts.Epoch
	if epoch.IsZero() {
		epoch = DefaultEpoch
		if base.Snapshot != "" {
			if t, err := time.Parse("20060102T150405Z", base.Snapshot); err == nil {
				epoch = t
			}
		}
	}
	in.Epoch = epoch.Unix()
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(opts.StateDir, "cache")
	}
	req := Request{
		Role:   role.Name,
		Inputs: in,
		Base: tree.BaseSpec{Suite: base.Suite, Mirror: base.Mirror, Snapshot: base.Snapshot, Arch: base.Arch,
			Components: base.Components, Packages: images.ImagePackages(base.Arch, base.Packages, role.Image.Packages),
			SecurityMirror: base.SecurityMirror, NoUpdates: base.UpdatesOff},
		Run:           role.Image.Run,
		Disk:          Disk{MinSize: role.Image.Disk.MinSize, Headroom: role.Image.Disk.Headroom, Formats: role.Image.Disk.Formats},
		Agent:         agent,
		Epoch:         epoch,
		Force:         opts.Force,
		ScanAllowlist: images.ScanAllowlistPath(f),
		Catalog:       openCatalog(opts),
		Cache:         &tree.Cache{Dir: cacheDir},
		Progress:      opts.Progress,
	}
	if role.Image.Builder == "rpi" {
		req.Card = true
		req.Base.Packages = append(req.Base.Packages, images.RPiPackages...)
		if !slices.Contains(req.Base.Components, images.RPiComponent) {
			req.Base.Components = append(slices.Clone(req.Base.Components), images.RPiComponent)
		}
	}
	if role.Deploy != nil && role.Deploy.Compute != "" {
		req.Deploys = []string{role.Deploy.Compute}
	}
	if base.Keyring != "" {
		// The bytes given to the builder are the ones the identity covers, even if the file changes
		// between the two reads.
		if req.Base.Keyring, err = os.ReadFile(base.Keyring); err != nil {
			return Request{}, fmt.Errorf("rootfs: base %q, keyring: %w", base.Name, err)
		}
		sum := sha256.Sum256(req.Base.Keyring)
		req.Inputs.Base.Keyring = hex.EncodeToString(sum[:])
	}
	if err := addRepositories(contextOf(opts), &req, base, role, offers); err != nil {
		return Request{}, err
	}
	req.Inputs.BaseTree = req.Base.Key()
	for _, src := range req.Base.Sources() {
		req.Inputs.Base.Sources = append(req.Inputs.Base.Sources, images.Source{URL: src.URL, Suite: src.Suite})
	}
	for _, file := range images.RoleFiles(role) {
		req.Files = append(req.Files, tree.File{Dest: file.Dest, Source: file.Source, Content: file.Content, Mode: file.Mode, Owner: file.Owner})
	}
	for _, c := range role.Image.Containers {
		req.Containers = append(req.Containers, tree.Container{Name: c.Name, Where: fmt.Sprintf("%s:%d:%d", c.Range.Filename, c.Range.Start.Line, c.Range.Start.Column), Ref: c.Ref(), Insecure: c.InsecureRegistry})
		if c.Start {
			req.ContainerUnits = append(req.ContainerUnits, fleet.ContainerUnit(c.Name))
		}
	}
	for _, c := range role.Image.Composes {
		req.ContainerUnits = append(req.ContainerUnits, fleet.ComposeUnit(c.Name))
	}
	if a := role.Image.Ansible; a != nil {
		req.Ansible = &Ansible{Playbook: a.Playbook, ExtraVars: a.ExtraVars}
	}
	return req, nil
}

// openCatalog is the state directory's catalog, shared through opts.Store when there is one.
func openCatalog(opts Options) *images.Catalog {
	cat := images.OpenCatalog(opts.StateDir)
	if opts.Store != nil {
		ctx := opts.Context
		if ctx == nil {
			ctx = context.Background()
		}
		cat.Share(ctx, opts.Store)
	}
	return cat
}

// DefaultAgentDir is DROVER_BOOT_DIR, else the directory of the running drover executable.
func DefaultAgentDir(lookup func(string) (string, bool)) string {
	if d, ok := lookup("DROVER_BOOT_DIR"); ok && d != "" {
		return d
	}
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	return filepath.Dir(exe)
}
