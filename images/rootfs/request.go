// Package rootfs is drover's VM image builder: a Debian tree from mmdebstrap, customized without
// booting, cleaned, and assembled into a GPT disk that boots under UEFI and BIOS. It runs as a list of
// packer-plugin-sdk multistep steps, one file each (step_*.go), each undoing its own side effects on
// failure, and the same steps back the Packer builder in builder.go.
package rootfs

import (
	"fmt"
	"io"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
	"github.com/drover-dev/drover/plugins/secrets"
)

// Request is one image build, independent of the fleet file so that Packer's config can fill it too.
type Request struct {
	Role   string
	Inputs images.Inputs
	Base   tree.BaseSpec
	// Repositories are the role's third-party apt repositories; RepositoryPackages, the packages
	// installed from them in the work tree (not in Base.Packages).
	Repositories       []tree.Repository
	RepositoryPackages []string
	Files              []tree.File
	Run                []string
	Ansible            *Ansible
	Disk               Disk
	// Card makes a Raspberry Pi SD card with A/B slots and its update bundle (the "rpi" builder)
	// instead of a GPT disk.
	Card  bool
	Agent string    // path of the drover-boot binary for the image's architecture
	Epoch time.Time // SOURCE_DATE_EPOCH: every file time in the image is clamped to it
	Force bool      // build even when the catalog has the image
	// ScanAllowlist is where the secret scan's allowlist is looked for (drover-scan-allow next to the
	// fleet file); "" or a missing file means the default allowlist alone.
	ScanAllowlist string
	// Forbidden are the role's secret values: the scan fails the build if any is in the tree. Nil
	// when the caller has none (no Vault configured); they print as [REDACTED].
	Forbidden []secrets.Secret
	Catalog   *images.Catalog
	// Deploys are the compute blocks the role deploys to: a shared catalog's image published on
	// every one of them is not built again here (Catalog.Covered).
	Deploys  []string
	Cache    *tree.Cache
	Progress Progress // nil for none
	// Refresh is set when a refresh found packages of the role's newest image that the mirror now
	// offers in another version: the manifest records it, and Inputs.PackageSet carries its digest.
	Refresh *images.Refresh
	// Containers are copied into the tree's container store, pinned by digest, and their units
	// (ContainerUnits, files of the role) enabled.
	Containers     []tree.Container
	ContainerUnits []string
}

// Ansible is a playbook run against the tree through Ansible's chroot connection.
type Ansible struct {
	Playbook  string
	ExtraVars map[string]string
}

// Disk says what disk files to make.
type Disk struct {
	MinSize  int64
	Headroom int // percent
	Formats  []string
}

// Identity is the image's identity, the sha256 of its inputs.
func (r *Request) Identity() string { return r.Inputs.Identity() }

// Progress hears about every step of every build. Implementations must be safe for concurrent use:
// several roles build at once.
type Progress interface {
	StepStarted(role, step string)
	StepFinished(role, step string, elapsed time.Duration, err error)
	// Output receives the build's tool output (mmdebstrap, apt, commands) line by line; the build log
	// gets it too.
	Output(role string) io.Writer
}

// StepError is a failed build: the role, the step and why.
type StepError struct {
	Role, Step string
	Err        error
	// Log is where the failed build's log was kept (the staging directory it was written in is
	// removed); empty when there was none.
	Log string
}

func (e *StepError) Error() string { return fmt.Sprintf("build %s: %s: %v", e.Role, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Result is what a build produced, or found already built.
type Result struct {
	Manifest *images.Manifest
	Cached   bool // the catalog already had this identity; nothing was built
	// Elsewhere is true for a build skipped because the state store records the image, built on
	// another machine and published on every compute the role deploys to; its disk is not here.
	Elsewhere bool
}

// Cached says whether the build of req can be skipped, and the manifest that makes it so: the local
// catalog has the identity (the disk cache), or the shared catalog records it and a published copy
// on every compute block the role deploys to (Catalog.Covered), so nothing here needs its disk.
func (r *Request) Cached() (*images.Manifest, bool, error) {
	if r.Force {
		return nil, false, nil
	}
	if r.Catalog.Has(r.Identity()) {
		m, err := r.Catalog.Get(r.Identity())
		if err != nil {
			return nil, false, err
		}
		// Recorded in the state store too, for an image built before the store was shared or
		// whose recording failed: a rerun fixes it.
		return m, true, r.Catalog.ShareManifest(m)
	}
	return r.Catalog.Covered(r.Identity(), r.Deploys)
}
