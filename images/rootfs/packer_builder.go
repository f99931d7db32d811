package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
)

// BuilderID identifies the artifacts of this builder to Packer post-processors.
const BuilderID = "drover.rootfs"

// Builder offers drover's VM image builder to Packer (packer-plugin-drover registers it as
// "drover-rootfs"). It runs the same steps as drover build and writes into the same catalog.
type Builder struct {
	config Config
	req    Request
}

var _ packersdk.Builder = (*Builder)(nil)

// ConfigSpec is the HCL2 schema Packer decodes the source block with.
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// Prepare decodes and checks the configuration and computes the image's identity.
func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	err := config.Decode(&b.config, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &b.config.ctx,
	}, raws...)
	if err != nil {
		return nil, nil, err
	}
	f, role, err := b.config.fleet()
	if err != nil {
		return nil, nil, err
	}
	agentDir := b.config.AgentDir
	if agentDir == "" {
		agentDir = DefaultAgentDir(os.LookupEnv)
	}
	epoch, _, err := EpochFromEnv(os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	cacheDir := b.config.CacheDir
	if cacheDir == "" {
		cacheDir = os.Getenv("DROVER_CACHE_DIR")
	}
	b.req, err = NewRequest(f, role, Options{StateDir: b.config.StateDir, CacheDir: cacheDir, DroverVersion: "packer", AgentDir: agentDir,
		Epoch: epoch, Force: b.config.PackerForce})
	if err != nil {
		return nil, nil, err
	}
	return nil, nil, nil
}

// fleet turns the Packer config into the one-role fleet that NewRequest understands, so both front
// ends share one path from inputs to identity.
func (c *Config) fleet() (*fleet.Fleet, *fleet.Role, error) {
	var errs []error
	if c.Role == "" {
		errs = append(errs, errors.New("rootfs: role is required"))
	}
	if c.StateDir == "" {
		c.StateDir = ".drover"
	}
	base := fleet.DefaultBase()
	base.Name = "packer"
	for dst, src := range map[*string]string{&base.Suite: c.Suite, &base.Mirror: c.Mirror, &base.Snapshot: c.Snapshot, &base.Arch: c.Arch} {
		if src != "" {
			*dst = src
		}
	}
	if len(c.Components) > 0 {
		base.Components = c.Components
	}
	base.SecurityMirror = c.SecurityMirror
	base.UpdatesOff, base.UpdatesOffReason = c.Updates != nil && !*c.Updates, strings.TrimSpace(c.UpdatesOffReason)
	switch {
	case base.UpdatesOff && base.UpdatesOffReason == "":
		errs = append(errs, errors.New("rootfs: updates = false needs updates_off_reason: the image gets no security updates"))
	case !base.UpdatesOff && base.UpdatesOffReason != "":
		errs = append(errs, errors.New("rootfs: updates_off_reason is set but updates is not false"))
	}
	img := fleet.Image{Base: base.Name, Arch: base.Arch, Builder: "debian", Packages: c.Packages, Run: c.Run,
		Disk: fleet.Disk{Headroom: 25, Formats: []string{"raw", "qcow2"}}}
	if c.Headroom > 0 {
		img.Disk.Headroom = c.Headroom
	}
	if len(c.Formats) > 0 {
		img.Disk.Formats = c.Formats
	}
	if c.MinSize != "" {
		n, err := strconv.ParseInt(strings.TrimSuffix(c.MinSize, "MiB"), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("rootfs: min_size %q: give MiB, such as \"2048MiB\"", c.MinSize))
		}
		img.Disk.MinSize = n << 20
	}
	for _, fc := range c.Files {
		file := fleet.File{Dest: fc.Dest, Mode: 0o644, Owner: "root:root"}
		if fc.Source != "" {
			file.Source, _ = filepath.Abs(fc.Source)
		} else {
			content := fc.Content
			file.Content = &content
		}
		if fc.Mode != "" {
			m, err := strconv.ParseUint(fc.Mode, 8, 32)
			if err != nil {
				errs = append(errs, fmt.Errorf("rootfs: file %s: mode %q is not octal", fc.Dest, fc.Mode))
			}
			file.Mode = os.FileMode(m) & os.ModePerm
		}
		if fc.Owner != "" {
			file.Owner = fc.Owner
		}
		img.Files = append(img.Files, file)
	}
	if c.AnsiblePlaybook != "" {
		p, _ := filepath.Abs(c.AnsiblePlaybook)
		img.Ansible = &fleet.Ansible{Playbook: p}
	}
	role := &fleet.Role{Name: c.Role, Image: img}
	dir, _ := os.Getwd()
	return &fleet.Fleet{Dir: dir, Bases: []*fleet.Base{base}, Roles: []*fleet.Role{role}}, role, errors.Join(errs...)
}

// Run builds the image and returns it as a Packer artifact.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, _ packersdk.Hook) (packersdk.Artifact, error) {
	b.req.Progress = uiProgress{ui: ui}
	res, err := Build(ctx, b.req)
	if err != nil {
		return nil, err
	}
	if res.Cached {
		ui.Say(fmt.Sprintf("%s: up to date (%s)", b.req.Role, res.Manifest.Identity))
	}
	return &Artifact{catalog: b.req.Catalog, manifest: res.Manifest}, nil
}

type uiProgress struct{ ui packersdk.Ui }

func (p uiProgress) StepStarted(role, step string) { p.ui.Say(fmt.Sprintf("%s: %s", role, step)) }
func (p uiProgress) StepFinished(role, step string, d time.Duration, err error) {
	if err != nil {
		p.ui.Error(fmt.Sprintf("%s: %s failed after %s: %v", role, step, d.Round(time.Millisecond), err))
	}
}
func (p uiProgress) Output(string) io.Writer { return io.Discard }

// Artifact is a built image in drover's catalog.
type Artifact struct {
	catalog  *images.Catalog
	manifest *images.Manifest
}

var _ packersdk.Artifact = (*Artifact)(nil)

// BuilderId is BuilderID.
func (a *Artifact) BuilderId() string { return BuilderID }

// Files are the disk files.
func (a *Artifact) Files() []string {
	var out []string
	for _, art := range a.manifest.Artifacts {
		out = append(out, filepath.Join(a.catalog.ImageDir(a.manifest.Identity), art.File))
	}
	return out
}

// Id is the image identity.
func (a *Artifact) Id() string { return a.manifest.Identity }

func (a *Artifact) String() string {
	return fmt.Sprintf("drover image %s@%s (%s)", a.manifest.Role, a.manifest.ShortID(), strings.Join(a.Files(), ", "))
}

// State exposes the manifest to post-processors.
func (a *Artifact) State(name string) interface{} {
	if name == "manifest" {
		return a.manifest
	}
	return nil
}

// Destroy removes the image from the catalog.
func (a *Artifact) Destroy() error { return a.catalog.Remove(a.manifest.Identity) }
