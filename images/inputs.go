// Package images bakes role images: it computes an image's identity from its inputs, keeps the
// catalog of built images under the state directory, and describes each image in a manifest. The
// builders that do the baking live in subpackages (rootfs for VM disks).
package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images/scan"
)

// BuilderVersion changes when the way images are baked changes, so old images stop matching.
const BuilderVersion = "rootfs/5"

// Inputs is everything an image is made from, normalized: two builds with equal Inputs are meant to
// give the same bytes, and the image's identity is the sha256 of this value's JSON.
type Inputs struct {
	DroverVersion  string        `json:"drover_version"`
	BuilderVersion string        `json:"builder_version"`
	Role           string        `json:"role"`
	Builder        string        `json:"builder"`
	Base           BaseInputs    `json:"base"`
	Packages       []string      `json:"packages"`
	Files          []FileInput   `json:"files"`
	Run            []string      `json:"run"`
	Ansible        *AnsibleInput `json:"ansible,omitempty"`
	Secrets        []string      `json:"secrets"`
	// Certificates are the Vault issue paths of the role's certificate blocks: drover-boot must
	// refuse to start the services without them, as without secrets. Absent for an image with
	// none, so such identities are what they were before certificates existed.
	Certificates []string   `json:"certificates,omitempty"`
	Disk         fleet.Disk `json:"disk"`
	Agent        string     `json:"agent"` // sha256 of the drover-boot binary baked in
	Epoch        int64      `json:"source_date_epoch"`
	// BaseTree is the key of the base tree the image starts from: it covers the boot packages the
	// builder adds and the tree recipe's version, which the fleet file does not show.
	BaseTree string `json:"base_tree"`
	// ScanAllowlist is the sha256 of the secret scan's allowlist (drover-scan-allow next to the
	// fleet file) when there is one, so that changing what the scan lets through rebuilds (and
	// rescans) the images. It is one file for the whole fleet: a change rebuilds every role.
	ScanAllowlist string `json:"scan_allowlist,omitempty"`
	// PackageSet is empty for an image made from the mirror as it was when it was built, and for
	// one made by a refresh (drover build --refresh) the digest of the package versions the mirror
	// offered then (PackageSetDigest): a refresh that finds a newer version of a package the
	// role's newest image has makes a new identity, and one that finds none keeps the old.
	PackageSet string `json:"package_set,omitempty"`
	// Repositories are the third-party apt repositories the image installs from (its base's and
	// its own), each with its key's sha256; absent for an image with none, so the identities of
	// such images are what they were before repositories existed.
	Repositories []RepositoryInput `json:"repositories,omitempty"`
	// Containers are the container blocks, by digest; nil for a role without any.
	Containers []ContainerInput `json:"containers,omitempty"`
}

// Recipe is the identity of in without its package set: what the fleet asks for, whichever
// versions the mirror gives. Images of one recipe differ only in the package versions they got.
func (in Inputs) Recipe() string {
	in.PackageSet = ""
	return in.Identity()
}

// ScanAllowlistPath is where the secret scan's allowlist of a fleet is: drover-scan-allow in the
// fleet file's directory; "" for a fleet without a directory (one made up by the Packer builder).
// The file need not exist.
func ScanAllowlistPath(f *fleet.Fleet) string {
	if f.Dir == "" {
		return ""
	}
	return filepath.Join(f.Dir, scan.AllowlistName)
}

// BaseInputs is the part of a base that shapes the tree.
type BaseInputs struct {
	Suite      string   `json:"suite"`
	Mirror     string   `json:"mirror"`
	Snapshot   string   `json:"snapshot,omitempty"`
	Arch       string   `json:"arch"`
	Components []string `json:"components"`
	Packages   []string `json:"packages"`
	// SecurityMirror is the fleet's security_mirror (empty for the default).
	SecurityMirror string `json:"security_mirror,omitempty"`
	// UpdatesOffReason is set when the base leaves SUITE-updates and SUITE-security out.
	UpdatesOffReason string `json:"updates_off_reason,omitempty"`
	// Keyring is the sha256 of the base's keyring file (the key its archives are signed with)
	// when it names one; empty for Debian's archive keys.
	Keyring string `json:"keyring,omitempty"`
	// Sources are the apt sources (archive URL and suite) the tree's packages came from, as the
	// builder resolves the base's defaults; the manifest shows them and the identity covers them.
	Sources []Source `json:"sources,omitempty"`
}

// Source is one apt source an image's packages came from.
type Source struct {
	URL   string `json:"url"`
	Suite string `json:"suite"`
}

// FileInput is a file by content, not by where it sits on the build host.
type FileInput struct {
	Dest   string      `json:"dest"`
	SHA256 string      `json:"sha256"`
	Mode   fs.FileMode `json:"mode"`
	Owner  string      `json:"owner"`
}

// AnsibleInput covers the playbook and everything beside it (roles, templates, vars).
type AnsibleInput struct {
	Playbook  string            `json:"playbook"` // file name within its directory
	DirSHA256 string            `json:"dir_sha256"`
	ExtraVars map[string]string `json:"extra_vars,omitempty"`
}

// BootPackages make a Debian tree boot as a VM: kernel, systemd, udev, networking with DHCP and a
// resolver, SSH, and a clock (systemd-timesyncd, pointed at EC2's hypervisor clock first by the
// image's drop-in; docs/aws.md). Every image of the debian builder has them; test trees use the same
// list so that they share the base-tree cache with real builds.
func BootPackages(arch string) []string {
	return []string{"linux-image-" + arch, "initramfs-tools", "systemd-sysv", "udev", "dbus", "iproute2", "netbase",
		"systemd-resolved", "systemd-timesyncd", "openssh-server", "ca-certificates"}
}

// RPiPackages are what the "rpi" builder adds to a role's tree: the Pi's GPU firmware and the
// kernel hooks that put the kernel, initramfs and device trees beside it (raspi-firmware), and the
// firmware of the Pi 3's and 4's Wi-Fi and Bluetooth chips (firmware-brcm80211, a few megabytes).
var RPiPackages = []string{"raspi-firmware", "firmware-brcm80211"}

// RPiComponent is the archive component that holds RPiPackages, which the "rpi" builder adds to the
// base's components.
const RPiComponent = "non-free-firmware"

// timeDaemons are Debian's NTP daemons that conflict with systemd-timesyncd (each provides
// time-daemon): a role that installs one of them gets it instead of timesyncd.
var timeDaemons = []string{"chrony", "ntp", "ntpsec", "openntpd"}

// ImagePackages is the package list of a role's base tree: the boot packages, the base's and the
// role's, without systemd-timesyncd when the role brings its own NTP daemon (apt would refuse both).
func ImagePackages(arch string, base, role []string) []string {
	boot := BootPackages(arch)
	if slices.ContainsFunc(role, func(p string) bool { return slices.Contains(timeDaemons, p) }) ||
		slices.ContainsFunc(base, func(p string) bool { return slices.Contains(timeDaemons, p) }) {
		boot = slices.DeleteFunc(boot, func(p string) bool { return p == "systemd-timesyncd" })
	}
	return append(append(boot, base...), role...)
}

// ResolveBase returns the base a role's image names, with the role's arch override applied.
func ResolveBase(f *fleet.Fleet, role *fleet.Role) (fleet.Base, error) {
	b := f.Base(role.Image.Base)
	if b == nil {
		if role.Image.Base != fleet.DefaultBase().Name {
			return fleet.Base{}, fmt.Errorf("images: role %q names base %q, which the fleet does not declare", role.Name, role.Image.Base)
		}
		b = fleet.DefaultBase()
	}
	base := *b
	if role.Image.Arch != "" {
		base.Arch = role.Image.Arch
	}
	return base, nil
}

// ComputeInputs reads every file the role's image uses and returns the normalized inputs.
func ComputeInputs(f *fleet.Fleet, role *fleet.Role, droverVersion, agentSHA256 string) (Inputs, error) {
	base, err := ResolveBase(f, role)
	if err != nil {
		return Inputs{}, err
	}
	in := Inputs{
		DroverVersion:  droverVersion,
		BuilderVersion: BuilderVersion,
		Role:           role.Name,
		Builder:        role.Image.Builder,
		Base: BaseInputs{Suite: base.Suite, Mirror: base.Mirror, Snapshot: base.Snapshot, Arch: base.Arch,
			Components: sortedSet(base.Components), Packages: sortedSet(base.Packages), SecurityMirror: base.SecurityMirror},
		Packages: sortedSet(role.Image.Packages),
		Run:      append([]string{}, role.Image.Run...),
		Secrets:  sortedSet(role.Image.SecretPaths()),
		Disk:     role.Image.Disk,
		Agent:    agentSHA256,
	}
	for _, c := range role.Image.Certificates {
		in.Certificates = append(in.Certificates, c.IssuePath())
	}
	in.Certificates = sortedSet(in.Certificates)
	in.Containers = ContainerInputs(role)
	if base.Keyring != "" {
		if in.Base.Keyring, err = FileSHA256(base.Keyring); err != nil {
			return Inputs{}, fmt.Errorf("images: base %q, keyring: %w", base.Name, err)
		}
	}
	if in.Repositories, err = repositoryInputs(RoleRepositories(base, role)); err != nil {
		return Inputs{}, err
	}
	if base.UpdatesOff {
		in.Base.UpdatesOffReason = base.UpdatesOffReason
		if in.Base.UpdatesOffReason == "" {
			in.Base.UpdatesOffReason = "updates = false"
		}
	}
	for _, file := range RoleFiles(role) {
		sum, err := fileSHA256(file)
		if err != nil {
			if file.MadeBy != "" && errors.Is(err, fs.ErrNotExist) {
				return Inputs{}, fmt.Errorf("images: role %q, file %s: %w", role.Name, file.Dest, &NotMadeError{Source: file.Source, MadeBy: file.MadeBy, Err: err})
			}
			return Inputs{}, fmt.Errorf("images: role %q, file %s: %w", role.Name, file.Dest, err)
		}
		in.Files = append(in.Files, FileInput{Dest: file.Dest, SHA256: sum, Mode: file.Mode, Owner: file.Owner})
	}
	sort.Slice(in.Files, func(i, j int) bool { return in.Files[i].Dest < in.Files[j].Dest })
	if p := ScanAllowlistPath(f); p != "" {
		sum, err := FileSHA256(p)
		switch {
		case err == nil:
			in.ScanAllowlist = sum
		case !errors.Is(err, fs.ErrNotExist):
			return Inputs{}, fmt.Errorf("images: the secret scan's allowlist: %w", err)
		}
	}
	if a := role.Image.Ansible; a != nil {
		sum, err := dirSHA256(filepath.Dir(a.Playbook))
		if err != nil {
			return Inputs{}, fmt.Errorf("images: role %q, ansible playbook %s: %w", role.Name, a.Playbook, err)
		}
		in.Ansible = &AnsibleInput{Playbook: filepath.Base(a.Playbook), DirSHA256: sum, ExtraVars: a.ExtraVars}
	}
	return in, nil
}

// NotMadeError is a role's file whose source is made by another command (the file block's made_by)
// and does not exist yet.
type NotMadeError struct {
	Source, MadeBy string
	Err            error
}

func (e *NotMadeError) Error() string {
	return fmt.Sprintf("%s is not made yet (%s makes it): %v", e.Source, e.MadeBy, e.Err)
}

func (e *NotMadeError) Unwrap() error { return e.Err }

// Identity is "sha256:" and the hex sha256 of the inputs' JSON (Go's encoding/json sorts map keys, so
// the encoding is canonical for this type).
func (in Inputs) Identity() string {
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("images: inputs do not encode: %v", err)) // only plain types: cannot happen
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func fileSHA256(file fleet.File) (string, error) {
	if file.Content != nil {
		sum := sha256.Sum256([]byte(*file.Content))
		return hex.EncodeToString(sum[:]), nil
	}
	return FileSHA256(file.Source)
}

// FileSHA256 is the hex sha256 of a file's bytes.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// dirSHA256 hashes every regular file under dir by relative path and content.
func dirSHA256(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sum, err := FileSHA256(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%s\n", rel, sum)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func sortedSet(items []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range items {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
