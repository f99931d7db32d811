package fleet

import (
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Container is a container "NAME" block of a role's image: a container image, pinned by its
// manifest digest, copied into the image's container store at build time and run by a systemd unit
// (ContainerUnit) at boot, so that an instance starts it without reaching a registry.
type Container struct {
	Name string
	// Image is the reference it is pulled from, without a digest: REGISTRY[:PORT]/REPOSITORY[:TAG],
	// the registry named (no short names: which registry a short name means is the build host's
	// configuration, not the fleet's).
	Image string
	// Digest is the manifest digest ("sha256:" and 64 hex digits) the build copies and the unit
	// runs; the identity covers it, so a build does not ask the registry what a tag means today.
	Digest string
	Engine string // "podman" or "docker" (ContainerEngines)
	// Command replaces the image's command (the arguments after the image on podman run); nil
	// keeps the image's.
	Command []string
	Network string   // "host" (the instance's own network; the default) or "none"
	Volumes []string // bind mounts, "HOST:CONTAINER" or "HOST:CONTAINER:ro"
	// InsecureRegistry lets the build reach the registry over plain HTTP or TLS it cannot verify
	// (a registry on the build host's loopback); the digest still pins every byte.
	InsecureRegistry bool
	// Start is whether the container gets a unit of its own (ContainerUnit), enabled at boot;
	// false bakes it only, for a Compose stack that runs it.
	Start bool
	Range hcl.Range
}

// Ref is the reference the image is stored and run under: the image pinned by its digest.
func (c Container) Ref() string { return repository(c.Image) + "@" + c.Digest }

// DockerTag is the name a docker container's image is loaded into Docker's store under at boot
// (DockerLoadUnit): the repository, and the digest as the tag. Docker keeps a digest only for an
// image it pulled itself, so the digest the identity pinned is carried in the tag.
func (c Container) DockerTag() string {
	return repository(c.Image) + ":drover-" + strings.TrimPrefix(c.Digest, "sha256:")
}

// ContainerUnit is the systemd unit that runs a container block.
func ContainerUnit(name string) string { return "drover-container-" + name + ".service" }

// DockerLoadUnit is the oneshot unit that loads an image's docker containers into Docker's store
// at boot, from the store the build baked them into, when Docker does not have them yet.
const DockerLoadUnit = "drover-docker-load.service"

// ContainerEngines are the engines a container block can name.
var ContainerEngines = []string{"podman", "docker"}

// enginePackages are the Debian packages a role gets for each engine: docker's containers are
// baked into the same store as podman's and copied into Docker's at boot with skopeo. apparmor is
// only a Recommends of docker.io, which the build does not install, but Debian's kernel has
// AppArmor on and dockerd then refuses to start a container without apparmor_parser (seen on the
// lab: "AppArmor enabled on system but the docker-default profile could not be loaded").
var enginePackages = map[string][]string{
	"podman": {"podman"},
	"docker": {"docker.io", "skopeo", "apparmor"},
}

var (
	containerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "image", Required: true}, {Name: "digest"}, {Name: "engine"}, {Name: "command"},
		{Name: "network"}, {Name: "volumes"}, {Name: "insecure_registry"}, {Name: "start"},
	}}
	containerNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	// imageRefPattern is REGISTRY[:PORT]/PATH[:TAG] as the distribution spec spells it.
	imageRefPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)
	digestPattern   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	volumePattern   = regexp.MustCompile(`^/[^:\s]*:/[^:\s]*(:ro|:rw)?$`)
)

// repository is an image reference without its tag.
func repository(ref string) string {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon]
	}
	return ref
}

// namesRegistry reports whether ref is REGISTRY[:PORT]/PATH[:TAG] with the registry named (a
// host with a dot or a port, or localhost): what a baked image must say, since the build copies
// it from exactly there and no default registry is assumed.
func namesRegistry(ref string) bool {
	first, _, _ := strings.Cut(ref, "/")
	return imageRefPattern.MatchString(ref) && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// decodeContainer reads a container "NAME" block.
func (d *decoder) decodeContainer(b *hcl.Block) (Container, bool) {
	c := Container{Name: b.Labels[0], Engine: "podman", Network: "host", Start: true, Range: b.DefRange}
	ok := true
	if !containerNamePattern.MatchString(c.Name) {
		d.errorf(b.LabelRanges[0], "Invalid container name",
			"A container's name names its systemd unit (%s) and the running container: letters, digits, '_', '.' and '-', starting with a letter or digit; got %q.", ContainerUnit("NAME"), c.Name)
		ok = false
	}
	body := d.content(b.Body, containerSchema)
	attrs := body.Attributes
	if d.str(attrs, "image", &c.Image) {
		switch {
		case strings.Contains(c.Image, "@"):
			d.errorf(attrs["image"].Expr.Range(), "Digest in the image reference",
				"\"image\" is the reference without a digest (REGISTRY/REPOSITORY:TAG); write the digest as digest = %q.", c.Image[strings.Index(c.Image, "@")+1:])
			ok = false
		case !namesRegistry(c.Image):
			d.errorf(attrs["image"].Expr.Range(), "Invalid image reference",
				"\"image\" is REGISTRY[:PORT]/REPOSITORY[:TAG] with the registry named, such as \"registry.example.net/web/app:1.4\" or \"127.0.0.1:5000/app:1\"; got %q.", c.Image)
			ok = false
		}
	} else {
		ok = false
	}
	if d.str(attrs, "digest", &c.Digest) {
		if !digestPattern.MatchString(c.Digest) {
			d.errorf(attrs["digest"].Expr.Range(), "Invalid image digest",
				"\"digest\" is the image's manifest digest, \"sha256:\" and 64 lower-case hex digits; got %q.", c.Digest)
			ok = false
		}
	} else if _, broken := attrs["digest"]; !broken && ok {
		rng := b.Body.MissingItemRange()
		if a, set := attrs["image"]; set {
			rng = a.Expr.Range()
		}
		d.errorf(rng, "Container image not pinned",
			"The container %q names %q without a digest: a tag can point at other bytes tomorrow, and the image's identity must say which ones it bakes. Pin it with the digest the tag has now:\n  skopeo inspect --format '{{.Digest}}' docker://%s\nand add digest = \"sha256:...\" to the block.", c.Name, c.Image, c.Image)
		ok = false
	} else {
		ok = false
	}
	if d.str(attrs, "engine", &c.Engine) && !d.oneOf(attrs, "engine", c.Engine, ContainerEngines...) {
		ok = false
	}
	d.boolean(attrs, "start", &c.Start)
	d.strings(attrs, "command", &c.Command)
	if d.str(attrs, "network", &c.Network) && !d.oneOf(attrs, "network", c.Network, "host", "none") {
		ok = false
	}
	if d.strings(attrs, "volumes", &c.Volumes) {
		for _, v := range c.Volumes {
			if !volumePattern.MatchString(v) {
				d.errorf(attrs["volumes"].Expr.Range(), "Invalid container volume",
					"\"volumes\" lists bind mounts \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\" with absolute paths, such as \"/run/drover/secrets:/secrets:ro\"; got %q.", v)
				ok = false
			}
		}
	}
	d.boolean(attrs, "insecure_registry", &c.InsecureRegistry)
	return c, ok
}

// withContainerEngines is packages with the engine of every container (enginePackages) and
// docker-compose for a Compose stack added when missing: a role that runs a container gets its
// engine without listing it.
func withContainerEngines(packages []string, containers []Container, composes []Compose) []string {
	var want []string
	for _, c := range containers {
		want = append(want, enginePackages[c.Engine]...)
	}
	if len(composes) > 0 {
		want = append(want, enginePackages["docker"]...)
		want = append(want, "docker-compose")
	}
	for _, pkg := range want {
		if !slices.ContainsFunc(packages, func(p string) bool {
			return p == pkg || strings.HasPrefix(p, pkg+"=") || strings.HasPrefix(p, pkg+"/")
		}) {
			packages = append(packages, pkg)
		}
	}
	return packages
}

// checkContainerFiles reports a role file at a path drover writes for the role's containers (the
// store's storage.conf, a container's unit): the role's would be overwritten.
func (d *decoder) checkContainerFiles(img Image, dests map[string]hcl.Range) {
	if len(img.Containers) == 0 {
		return
	}
	if rng, ok := dests["/etc/systemd/system/"+DockerLoadUnit]; ok && slices.ContainsFunc(img.Containers, func(c Container) bool { return c.Engine == "docker" }) {
		d.errorf(rng, "Conflicting file", "/etc/systemd/system/%s is the unit drover writes to load the docker containers into Docker's store at boot.", DockerLoadUnit)
	}
	for _, c := range img.Composes {
		for _, p := range []string{"/etc/systemd/system/" + ComposeUnit(c.Name), ComposeDir(c.Name) + "/" + ComposeFileName, ComposeDir(c.Name) + "/" + ComposeOverrideName} {
			if rng, ok := dests[p]; ok {
				d.errorf(rng, "Conflicting file", "%s is written by drover for the Compose stack %q at %s.", p, c.Name, pos(c.Range))
			}
		}
	}
	if rng, ok := dests[ContainerStorageConf]; ok {
		d.errorf(rng, "Conflicting file",
			"%s is written by drover for the container blocks (the store the build fills, with the vfs driver); a role with containers cannot bring its own.", ContainerStorageConf)
	}
	for _, c := range img.Containers {
		unit := "/etc/systemd/system/" + ContainerUnit(c.Name)
		if rng, ok := dests[unit]; ok && c.Start {
			d.errorf(rng, "Conflicting file", "%s is the unit drover writes for the container %q at %s.", unit, c.Name, pos(c.Range))
		}
	}
}

// ContainerStorageConf is the container store's configuration file, which drover writes in an
// image with containers.
const ContainerStorageConf = "/etc/containers/storage.conf"
