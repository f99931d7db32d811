package images

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Manifest describes one built image; it is manifest.json in the image's catalog directory.
type Manifest struct {
	Identity       string     `json:"identity"` // sha256 of the inputs
	Role           string     `json:"role"`
	Arch           string     `json:"arch"`
	Created        time.Time  `json:"created"`
	DroverVersion  string     `json:"drover_version"`
	Inputs         Inputs     `json:"inputs"`
	ArtifactSHA256 string     `json:"artifact_sha256"` // sha256 of the raw disk
	Artifacts      []Artifact `json:"artifacts"`
	Packages       []Package  `json:"packages"` // the SBOM: every installed Debian package
	// Refresh is set on an image a refresh made: which packages the mirror offered newer than the
	// image before it had.
	Refresh *Refresh `json:"refresh,omitempty"`
	// BaseTreeEntry is the cached base tree the image was made from: the base's key (Inputs'
	// BaseTree) and, for a live mirror, "-" and the state of its suites' package indexes then.
	BaseTreeEntry string     `json:"base_tree_entry,omitempty"`
	Sizes         Sizes      `json:"sizes"`
	Kernel        string     `json:"kernel,omitempty"`
	Cmdline       string     `json:"cmdline,omitempty"`
	Steps         []StepTime `json:"steps"`
	Scan          *ScanStats `json:"scan,omitempty"` // the secret scan of the tree (nil in images built before it)
	BuildLog      string     `json:"build_log"`      // file name within the image directory
	Files         string     `json:"files"`          // file name of the tree's file index, for images diff
	Card          *Card      `json:"card,omitempty"` // the "rpi" builder's SD card and update bundle

	elsewhere bool // read from the state store: the disk is on the machine that built it (DiskElsewhere)
}

// Artifact is one file of an image: a disk in some format.
type Artifact struct {
	Format string `json:"format"` // raw, qcow2
	File   string `json:"file"`   // name within the image directory
	Size   int64  `json:"size"`   // bytes on disk (allocated, for sparse files)
	Length int64  `json:"length"` // apparent length in bytes
	SHA256 string `json:"sha256"`
}

// Package is an installed Debian package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Sizes are the sizes that matter when choosing a plan or a disk.
type Sizes struct {
	TreeBytes int64 `json:"tree_bytes"` // the root tree's content
	RootBytes int64 `json:"root_bytes"` // the root partition
	ESPBytes  int64 `json:"esp_bytes"`
	DiskBytes int64 `json:"disk_bytes"` // the raw disk's length
}

// ScanStats is what the secret scan of an image's tree saw. A finding fails the build, so a cataloged
// image has Findings 0; Allowlisted counts what an allowlist let through.
type ScanStats struct {
	Files       int   `json:"files"`
	Bytes       int64 `json:"bytes"`
	Findings    int   `json:"findings"`
	Allowlisted int   `json:"allowlisted"`
	// ForbiddenValues is how many of the role's secret values were looked for (0 when the build had
	// none to compare with).
	ForbiddenValues int `json:"forbidden_values"`
}

// StepTime is how long one build step took.
type StepTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// ShortID is the first 12 hex digits of the identity, the way images are named in output.
func (m *Manifest) ShortID() string { return ShortID(m.Identity) }

// ShortID is the first 12 hex digits of an identity such as "sha256:0123...".
func ShortID(identity string) string {
	const prefix = "sha256:"
	if len(identity) >= len(prefix)+12 && identity[:len(prefix)] == prefix {
		return identity[len(prefix) : len(prefix)+12]
	}
	return identity
}

// Artifact returns the artifact of a format, or nil.
func (m *Manifest) Artifact(format string) *Artifact {
	for i := range m.Artifacts {
		if m.Artifacts[i].Format == format {
			return &m.Artifacts[i]
		}
	}
	return nil
}

func readManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("images: %s is not a drover manifest: %w", path, err)
	}
	if m.Identity == "" || m.Role == "" {
		return nil, fmt.Errorf("images: %s lacks an identity or a role", path)
	}
	return &m, nil
}
