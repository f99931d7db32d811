// Package fleet decodes and validates a drover fleet file (HCL2) into the domain model that the image
// builder and the rollout controller consume. Every problem is reported as an hcl.Diagnostic with the
// source range it concerns, and all of them are reported at once.
package fleet

import (
	"io/fs"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Fleet is a decoded, validated fleet file. Paths in it are absolute.
type Fleet struct {
	Path     string // absolute path of the fleet file
	Dir      string // directory of the fleet file; relative paths in the file are resolved from here
	Name     string // drover { name }, defaulting to the directory's base name
	StateDir string // drover { state_dir }, absolute; empty when not set in the file
	// KeepImages is how many images per role drover build keeps in the catalog (drover {
	// keep_images }, DefaultKeepImages when not set); images a rollout uses are kept besides. 0
	// turns the build's pruning off.
	KeepImages int
	Variables  map[string]cty.Value
	Bases      []*Base
	Roles      []*Role
	Compute    []*Provider
	DNS        []*Provider
	IP         []*Provider
	Vault      *Provider // nil when the fleet has no vault block
	Store      *Provider // nil when the fleet has no store block (the local store is the default)

	shownDir string // the fleet file's directory as the user wrote it, for messages
}

// Base is a base tree that images start from (mmdebstrap's suite, mirror, architecture, packages).
type Base struct {
	Name       string
	Suite      string
	Mirror     string
	Snapshot   string // snapshot.debian.org timestamp such as 20261101T000000Z; empty for the live mirror
	Arch       string
	Components []string
	Packages   []string
	// SecurityMirror is the security archive's URL; empty for the default (deb.debian.org's
	// debian-security, or snapshot.debian.org's with a snapshot).
	SecurityMirror string
	// UpdatesOff leaves SUITE-updates and SUITE-security out of the base, for the reason in
	// UpdatesOffReason; the zero value installs from them, so a Base made in code gets updates.
	UpdatesOff       bool
	UpdatesOffReason string
	// Keyring is the absolute path of the OpenPGP public key file that signs the base's archives
	// (the fleet's keyring, relative to the fleet file); empty for Debian's own archive keys.
	Keyring string
	// Repositories are third-party apt repositories every image of the base may install from.
	Repositories []Repository
	Range        hcl.Range
}

// Role is one kind of server: how its image is baked and how it is deployed.
type Role struct {
	Name   string
	Image  Image
	Deploy *Deploy // nil for a role that is only built (a Pi SD card flashed by hand, say)
	Range  hcl.Range

	syntax *hclsyntax.Body // kept so checks made after decoding can point at the attribute at fault
}

// Image says how a role's image is baked on top of its base.
type Image struct {
	Base     string
	Arch     string // the base's architecture unless the role overrides it
	Builder  string // "debian" (a GPT disk for VMs) or "rpi" (an SD card with A/B slots)
	Packages []string
	Files    []File
	Run      []string
	Ansible  *Ansible
	Secrets  []string // Vault paths fetched at boot, never baked, each written as NAME.json
	// SecretFiles are the secret blocks: files written at boot from one path each, a field of it
	// or a template rendered with its fields.
	SecretFiles []SecretFile
	// Certificates are the certificate blocks: issued from Vault's PKI engine at boot, renewed.
	Certificates []Certificate
	// Services are the role's systemd units that start only after drover-boot has written the
	// secrets, and not at all when it fails.
	Services []string
	// Repositories are third-party apt repositories the image's packages may come from, besides
	// its base's (one of the same name replaces the base's).
	Repositories []Repository
	Disk         Disk
	// Containers are the container blocks: images pinned by digest, baked into the image's
	// container store and run at boot by a unit each (ContainerUnit). The role's packages hold
	// their engine.
	Containers []Container
	// Composes are the compose blocks: Compose files of the fleet's repo run by docker-compose at
	// boot (ComposeUnit), every image they name a docker container of Containers.
	Composes []Compose
}

// SecretFile is one secret block: a file drover-boot writes under /run/drover/secrets at boot.
type SecretFile struct {
	Name     string      // the file name under /run/drover/secrets
	Path     string      // the KV version 2 path read
	Field    string      // one field written as is; empty with Template, or for all fields as JSON
	Template string      // absolute path on the build host of a Go text/template; baked into the image
	Owner    string      // "user:group"; empty means root:root
	Mode     fs.FileMode // zero means 0400
	Range    hcl.Range
}

// SecretPaths are the distinct Vault paths the role reads at boot: the secrets list, then the
// secret blocks' paths.
func (img Image) SecretPaths() []string {
	out := append([]string{}, img.Secrets...)
	for _, s := range img.SecretFiles {
		if !contains(out, s.Path) {
			out = append(out, s.Path)
		}
	}
	return out
}

// File is one file copied into the image tree.
type File struct {
	Dest    string      // absolute path inside the image
	Source  string      // absolute path on the build host; empty when Content is used
	Content *string     // inline content instead of Source
	Mode    fs.FileMode // permission bits
	Owner   string      // "user:group", names or numbers resolved inside the image
	// MadeBy, when set, names what makes Source ("go tool task vault"): a source that does not exist
	// yet is then a warning when the fleet loads and an error only when the role is built.
	MadeBy string
}

// Ansible runs a playbook against the image tree through Ansible's chroot connection.
type Ansible struct {
	Playbook  string // absolute path
	ExtraVars map[string]string
}

// Disk describes the disk artifacts of an image.
type Disk struct {
	MinSize  int64    // bytes; the root filesystem is at least this big
	Headroom int      // percent of free space added on top of the tree's size
	Formats  []string // "raw", "qcow2"
}

// Deploy says where and how a role runs.
type Deploy struct {
	Compute     string // name of a compute block
	Count       int
	Strategy    string // a strategy of rollout's registry: "bluegreen", "raft" or "handoff" (the default with volumes)
	Ports       []int
	Health      []HealthCheck
	Cutover     Cutover
	KeepOld     time.Duration
	AutoPromote bool
	Watch       time.Duration
	// AWSIAMRole, when set, is the ARN of the IAM role the instances run as (their instance
	// profile's): they log in to Vault with its aws auth method (iam) by that identity, and no
	// SecretID is issued or delivered.
	AWSIAMRole string
	// Volumes are the role's volumes (volume blocks), in file order.
	Volumes []Volume
	Range   hcl.Range
}

// HealthCheck is one readiness check run against every new instance, then through the public name.
type HealthCheck struct {
	Type          string // a type of rollout's health registry: http, https, tcp, dns, vault, postgres
	Port          int
	Path          string // http(s)
	Expect        int    // http(s) status code
	Query         string // dns: the name asked
	Interval      time.Duration
	Timeout       time.Duration
	Healthy       int // consecutive successes needed
	Deadline      time.Duration
	TLSSkipVerify bool
	Scheme        string // vault: "http" (the default) or "https"
	CAFile        string // https, and vault over https: the PEM CA the endpoint is verified with (absolute)
}

// TLS reports whether the check speaks HTTPS: type https, or vault with scheme "https".
func (hc HealthCheck) TLS() bool {
	return hc.Type == "https" || (hc.Type == "vault" && hc.Scheme == "https")
}

// Cutover says how traffic moves from blue to green.
type Cutover struct {
	Type  string // a cutover type of rollout's registry: "dns", "ip" or "none"
	DNS   string // dns block name (type dns; type ip: where the failover address is published)
	Name  string // record name relative to the zone, or "@" (type dns; type ip: the published name)
	TTL   int    // seconds (type dns, and a published name)
	IP    string // ip block name (type ip)
	Drain time.Duration
}

// Provider is a provider block: compute "qemu" "lab" {...}, dns "rfc2136" "home" {...}, store "local"
// {...}, vault {...}. Config is the provider's own Config struct, decoded from the block on top of the
// provider's NewDefaultConfig().
type Provider struct {
	Kind   string
	Type   string
	Name   string
	Config any
	// Compute is, for an ip block, the compute block whose instances its address moves between:
	// its compute attribute, else the one compute block of a type the ip type supports.
	Compute string
	Range   hcl.Range

	computeRange *hcl.Range // the compute attribute's value, when written
	typeRange    hcl.Range
}

// Role returns the role with the given name, or nil.
func (f *Fleet) Role(name string) *Role {
	for _, r := range f.Roles {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Base returns the base with the given name, or nil.
func (f *Fleet) Base(name string) *Base {
	for _, b := range f.Bases {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Provider returns the provider block of a kind ("compute", "dns", "ip") by name, or nil.
func (f *Fleet) Provider(kind, name string) *Provider {
	var list []*Provider
	switch kind {
	case KindCompute:
		list = f.Compute
	case KindDNS:
		list = f.DNS
	case KindIP:
		list = f.IP
	case KindStore:
		list = []*Provider{f.Store}
	case KindSecrets:
		list = []*Provider{f.Vault}
	}
	for _, p := range list {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// Provider kinds, the first word of a provider block.
const (
	KindCompute = "compute"
	KindDNS     = "dns"
	KindIP      = "ip"
	KindStore   = "store"
	KindSecrets = "secrets" // written as a vault block
)
