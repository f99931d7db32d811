package fleet

import (
	"path"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var (
	roleSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "image"}, {Type: "deploy"}}}

	imageSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "base", Required: true}, {Name: "arch"}, {Name: "builder"}, {Name: "packages"},
			{Name: "files"}, {Name: "run"}, {Name: "secrets"}, {Name: "services"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "file", LabelNames: []string{"dest"}}, {Type: "ansible"}, {Type: "disk"},
			{Type: "secret", LabelNames: []string{"name"}}, {Type: "repository", LabelNames: []string{"name"}},
			{Type: "certificate", LabelNames: []string{"name"}},
			{Type: "container", LabelNames: []string{"name"}},
			{Type: "compose", LabelNames: []string{"name"}},
		},
	}
	fileSchema    = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source"}, {Name: "content"}, {Name: "mode"}, {Name: "owner"}, {Name: "made_by"}}}
	ansibleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "playbook", Required: true}, {Name: "extra_vars"}}}
	diskSchema    = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "min_size"}, {Name: "headroom"}, {Name: "formats"}}}

	unitPattern  = regexp.MustCompile(`^[A-Za-z0-9@_.:-]+$`)
	ownerPattern = regexp.MustCompile(`^[a-z_0-9][a-z0-9_.-]*(:[a-z_0-9][a-z0-9_.-]*)?$`)
	sizePattern  = regexp.MustCompile(`^(\d+)\s*(B|K|KB|KiB|M|MB|MiB|G|GB|GiB)?$`)
)

// Builders that bake images: "debian" a GPT disk for VMs and clouds, "rpi" a Raspberry Pi SD card
// with A/B slots (always arm64).
var Builders = []string{"debian", "rpi"}

// RPiArch is the only architecture the "rpi" builder makes: the Pi 3, 4 and 5 run Debian's arm64.
const RPiArch = "arm64"

// plannedBuilders are builders announced in DESIGN.md that are not built yet: a role naming one is
// refused with what is available, not accepted and then failing at build. None is planned today.
var plannedBuilders = map[string]string{}

// checkRPiDeploy pairs what updates a device in place: an "rpi" role's image is an SD card, which
// no compute type launches, so it deploys with strategy "ab" on a compute block of type "device";
// that strategy needs such a block, and such a block serves no other strategy.
func (d *decoder) checkRPiDeploy(f *Fleet, role *Role) {
	dep := role.Deploy
	if dep == nil {
		return
	}
	comp := f.Provider(KindCompute, dep.Compute)
	onDevice := comp != nil && comp.Type == "device"
	switch {
	case role.Image.Builder == "rpi" && dep.Strategy != "ab":
		d.errorf(attrRange(role.syntax, "deploy", "compute"), "Deploy needs strategy \"ab\" for this builder",
			"Role %q is built with the \"rpi\" builder, whose image is an SD card for a Raspberry Pi: no compute type launches it. It is updated in place: set strategy = \"ab\" and a compute block of type \"device\" (docs/device.md), or remove the deploy block and write the card with: drover images write %s DEVICE.", role.Name, role.Name)
	case dep.Strategy == "ab" && comp != nil && !onDevice:
		d.errorf(attrRange(role.syntax, "deploy", "compute"), "Strategy \"ab\" needs a device",
			"Strategy \"ab\" writes the other slot of machines that already exist, and compute %q is of type %q, which launches machines: use a compute block of type \"device\", or strategy \"bluegreen\".", comp.Name, comp.Type)
	case onDevice && dep.Strategy != "ab":
		d.errorf(attrRange(role.syntax, "deploy", "compute"), "Device needs strategy \"ab\"",
			"Compute %q is of type \"device\": machines that exist already, which are updated in place, never launched or destroyed. Set strategy = \"ab\" (the role's image must be an SD card: builder = \"rpi\").", comp.Name)
	}
}

// DiskFormats are the disk artifact formats an image can be written in.
var DiskFormats = []string{"raw", "qcow2"}

func (d *decoder) decodeRoles(f *Fleet, blocks hcl.Blocks, opts Options) []*Role {
	var roles []*Role
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate role", "A role named %q was already declared at %s.", name, pos(prev))
			continue
		}
		seen[name] = b.DefRange
		if !validName(name) {
			d.errorf(b.LabelRanges[0], "Invalid role name", "Role name %q must start with a letter and contain only letters, digits, _ and -.", name)
		}
		role := &Role{Name: name, Range: b.DefRange}
		role.syntax, _ = b.Body.(*hclsyntax.Body)
		c := d.content(b.Body, roleSchema)
		var images, deploys hcl.Blocks
		for _, blk := range c.Blocks {
			if blk.Type == "image" {
				images = append(images, blk)
			} else {
				deploys = append(deploys, blk)
			}
		}
		switch {
		case len(images) == 0:
			d.errorf(b.Body.MissingItemRange(), "Missing image block", "Role %q needs an image block that says how its image is baked.", name)
		case len(images) > 1:
			d.errorf(images[1].DefRange, "Duplicate image block", "Role %q has more than one image block.", name)
		default:
			role.Image = d.decodeImage(f, name, images[0], opts)
		}
		if len(deploys) > 1 {
			d.errorf(deploys[1].DefRange, "Duplicate deploy block", "Role %q has more than one deploy block.", name)
		}
		if len(deploys) > 0 {
			role.Deploy = d.decodeDeploy(f, deploys[0], opts)
		}
		d.checkCertificates(role)
		roles = append(roles, role)
	}
	return roles
}

func (d *decoder) decodeImage(f *Fleet, name string, b *hcl.Block, opts Options) Image {
	// Raw only by default: every target reads it (the qemu provider boots it through an overlay of its
	// own, the clouds import it), and a qcow2 copy cost seconds and gigabytes on every rebuild. A
	// role that hands out qcow2 files asks for them with disk { formats = ["raw", "qcow2"] }.
	img := Image{Builder: "debian", Disk: Disk{Headroom: 25, Formats: []string{"raw"}}}
	c := d.content(b.Body, imageSchema)
	if d.str(c.Attributes, "base", &img.Base) {
		d.nonEmpty(c.Attributes, "base", img.Base, "the base the image starts from")
	}
	if d.str(c.Attributes, "arch", &img.Arch) {
		d.oneOf(c.Attributes, "arch", img.Arch, Architectures...)
	}
	if d.str(c.Attributes, "builder", &img.Builder) {
		if what, planned := plannedBuilders[img.Builder]; planned {
			d.errorf(c.Attributes["builder"].Expr.Range(), "Builder not available yet",
				"The %q builder (%s) is not available yet. Available builders: %s.", img.Builder, what, quoteList(Builders))
		} else {
			d.oneOf(c.Attributes, "builder", img.Builder, Builders...)
		}
	}
	if img.Builder == "rpi" {
		if img.Arch != "" && img.Arch != RPiArch {
			d.errorf(c.Attributes["arch"].Expr.Range(), "Architecture not available for this builder",
				"The \"rpi\" builder makes %s images for the Raspberry Pi, got arch %q; remove arch or set it to %q.", RPiArch, img.Arch, RPiArch)
		}
		img.Arch = RPiArch
	}
	if d.strings(c.Attributes, "packages", &img.Packages) {
		d.checkNames(c.Attributes, "packages", img.Packages, debianPackage, "package")
	}
	d.strings(c.Attributes, "run", &img.Run)
	d.strings(c.Attributes, "secrets", &img.Secrets)
	if d.strings(c.Attributes, "services", &img.Services) {
		for _, svc := range img.Services {
			if !unitPattern.MatchString(svc) {
				d.errorf(c.Attributes["services"].Expr.Range(), "Invalid service name",
					"\"services\" lists systemd units such as \"nginx\" or \"postgresql.service\", got %q.", svc)
			}
		}
	}
	secretNames := map[string]hcl.Range{}
	for _, p := range img.Secrets {
		secretNames[path.Base(p)+".json"] = c.Attributes["secrets"].Expr.Range()
	}

	containerNames := map[string]hcl.Range{}
	composeNames := map[string]hcl.Range{}
	dests := map[string]hcl.Range{}
	addFile := func(file File, rng hcl.Range) {
		if problem := fileDestProblem(file.Dest); problem != "" {
			d.errorf(rng, "Invalid file destination", "%s, got %q.", problem, file.Dest)
			return
		}
		file.Dest = path.Clean(file.Dest)
		if prev, dup := dests[file.Dest]; dup {
			d.errorf(rng, "Duplicate file destination", "%s is already written by the file at %s.", file.Dest, pos(prev))
			return
		}
		dests[file.Dest] = rng
		img.Files = append(img.Files, file)
	}
	var shorthand map[string]string
	if d.stringMap(c.Attributes, "files", &shorthand) {
		for _, dest := range sortedKeys(shorthand) {
			rng := d.mapEntryRange(c.Attributes["files"].Expr, dest)
			src := resolvePath(f.Dir, shorthand[dest])
			if d.checkSource(opts, rng, shorthand[dest], src, f.shownDir) {
				addFile(File{Dest: dest, Source: src, Mode: 0o644, Owner: "root:root"}, rng)
			}
		}
	}
	img.Repositories = d.decodeRepositories(f, c.Blocks, opts)
	for _, fb := range c.Blocks {
		switch fb.Type {
		case "file":
			if file, ok := d.decodeFile(f, name, fb, opts); ok {
				addFile(file, fb.LabelRanges[0])
			}
		case "ansible":
			if img.Ansible != nil {
				d.errorf(fb.DefRange, "Duplicate ansible block", "An image has at most one ansible block.")
				continue
			}
			img.Ansible = d.decodeAnsible(f, fb, opts)
		case "disk":
			d.decodeDisk(fb, &img.Disk)
		case "secret":
			sf, ok := d.decodeSecret(f, fb, opts)
			if prev, dup := secretNames[sf.Name]; dup {
				d.errorf(fb.LabelRanges[0], "Duplicate secret file", "/run/drover/secrets/%s is already written by the secret at %s.", sf.Name, pos(prev))
				continue
			}
			secretNames[sf.Name] = fb.LabelRanges[0]
			if ok {
				img.SecretFiles = append(img.SecretFiles, sf)
			}
		case "certificate":
			cert, ok := d.decodeCertificate(fb)
			for _, file := range []string{cert.Name + ".key", cert.Name + ".crt"} {
				if prev, dup := secretNames[file]; dup {
					d.errorf(fb.LabelRanges[0], "Duplicate secret file", "/run/drover/secrets/%s is already written by the block at %s.", file, pos(prev))
					ok = false
				}
				secretNames[file] = fb.LabelRanges[0]
			}
			if ok {
				img.Certificates = append(img.Certificates, cert)
			}
		case "container":
			ct, ok := d.decodeContainer(fb)
			if prev, dup := containerNames[ct.Name]; dup {
				d.errorf(fb.LabelRanges[0], "Duplicate container", "A container named %q was already declared at %s.", ct.Name, pos(prev))
				continue
			}
			containerNames[ct.Name] = fb.LabelRanges[0]
			if ok {
				img.Containers = append(img.Containers, ct)
			}
		case "compose":
			if prev, dup := composeNames[fb.Labels[0]]; dup {
				d.errorf(fb.LabelRanges[0], "Duplicate Compose stack", "A compose block named %q was already declared at %s.", fb.Labels[0], pos(prev))
				continue
			}
			composeNames[fb.Labels[0]] = fb.LabelRanges[0]
			if cp, ok := d.decodeCompose(f, fb, opts); ok {
				img.Composes = append(img.Composes, cp)
			}
		}
	}
	d.checkComposeImages(&img)
	img.Packages = withContainerEngines(img.Packages, img.Containers, img.Composes)
	d.checkContainerFiles(img, dests)
	return img
}

// checkSource reports a file source that does not exist, naming the path the user wrote and where it
// was looked for.
func (d *decoder) checkSource(opts Options, rng hcl.Range, written, resolved, shownDir string) bool {
	fi, err := opts.stat(resolved)
	switch {
	case err != nil:
		d.errorf(rng, "Missing file", "The file %q does not exist (looked for %s; paths are relative to the fleet file).", written, shownPath(written, shownDir))
		return false
	case !fi.Mode().IsRegular():
		d.errorf(rng, "Not a file", "%q is %s; name a regular file.", written, describeFileType(fi.Mode()))
		return false
	}
	return true
}

// shownPath is where a source path the user wrote was looked for, as diagnostics show it.
func shownPath(written, shownDir string) string {
	if filepath.IsAbs(written) {
		return written
	}
	return filepath.Join(shownDir, written)
}

func (d *decoder) decodeFile(f *Fleet, role string, b *hcl.Block, opts Options) (File, bool) {
	file := File{Dest: b.Labels[0], Mode: 0o644, Owner: "root:root"}
	c := d.content(b.Body, fileSchema)
	var src, content string
	hasSrc, hasContent := d.str(c.Attributes, "source", &src), d.str(c.Attributes, "content", &content)
	switch {
	case hasSrc && hasContent:
		d.errorf(c.Attributes["content"].Range, "Conflicting arguments", "A file takes either \"source\" or \"content\", not both.")
		return file, false
	case !hasSrc && !hasContent:
		if _, broken := c.Attributes["source"]; !broken {
			if _, broken := c.Attributes["content"]; !broken {
				d.errorf(b.Body.MissingItemRange(), "Missing file source", "The file %q needs \"source\" (a path) or \"content\" (a string).", file.Dest)
			}
		}
		return file, false
	case hasSrc:
		file.Source = resolvePath(f.Dir, src)
		if d.str(c.Attributes, "made_by", &file.MadeBy) {
			// A build artifact (a server binary, say) another command makes: until it exists, only
			// this role cannot be built, and the rest of the fleet still loads.
			if _, err := opts.stat(file.Source); err != nil {
				d.warnf(c.Attributes["source"].Expr.Range(), "File not made yet",
					"The file %q does not exist yet (looked for %s); %s makes it. Role %q cannot be built until then.", src, shownPath(src, f.shownDir), file.MadeBy, role)
			}
		} else if !d.checkSource(opts, c.Attributes["source"].Expr.Range(), src, file.Source, f.shownDir) {
			return file, false
		}
	default:
		file.Content = &content
	}
	var mode string
	if d.str(c.Attributes, "mode", &mode) {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m > 0o7777 {
			d.errorf(c.Attributes["mode"].Expr.Range(), "Invalid file mode", "\"mode\" must be an octal string such as \"0644\" or \"0755\", got %q.", mode)
			return file, false
		}
		file.Mode = fsMode(m)
	}
	if d.str(c.Attributes, "owner", &file.Owner) && !ownerPattern.MatchString(file.Owner) {
		d.errorf(c.Attributes["owner"].Expr.Range(), "Invalid file owner", "\"owner\" must be \"user\" or \"user:group\", got %q.", file.Owner)
		return file, false
	}
	return file, true
}

func (d *decoder) decodeAnsible(f *Fleet, b *hcl.Block, opts Options) *Ansible {
	a := &Ansible{}
	c := d.content(b.Body, ansibleSchema)
	var playbook string
	if d.str(c.Attributes, "playbook", &playbook) && d.nonEmpty(c.Attributes, "playbook", playbook, "the playbook to run") {
		a.Playbook = resolvePath(f.Dir, playbook)
		d.checkSource(opts, c.Attributes["playbook"].Expr.Range(), playbook, a.Playbook, f.shownDir)
	}
	d.stringMap(c.Attributes, "extra_vars", &a.ExtraVars)
	return a
}

func (d *decoder) decodeDisk(b *hcl.Block, disk *Disk) {
	c := d.content(b.Body, diskSchema)
	var size string
	if d.str(c.Attributes, "min_size", &size) {
		n, ok := parseSize(size)
		if !ok {
			d.errorf(c.Attributes["min_size"].Expr.Range(), "Invalid size", "\"min_size\" must be a size such as \"2GiB\" or \"512MiB\", got %q.", size)
		}
		disk.MinSize = n
	}
	d.integer(c.Attributes, "headroom", 0, 400, &disk.Headroom)
	if d.strings(c.Attributes, "formats", &disk.Formats) {
		if len(disk.Formats) == 0 {
			d.errorf(c.Attributes["formats"].Expr.Range(), "No disk format", "\"formats\" names at least one of %s; leave it out for both.", quoteList(DiskFormats))
		}
		for _, fm := range disk.Formats {
			d.oneOf(c.Attributes, "formats", fm, DiskFormats...)
		}
	}
}

// parseSize reads "512MiB", "2GiB", "2G" (binary units throughout: disks are sized in MiB).
func parseSize(s string) (int64, bool) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KB": 10, "KiB": 10, "M": 20, "MB": 20, "MiB": 20, "G": 30, "GB": 30, "GiB": 30}[m[2]]
	if n > (1<<62)>>shift {
		return 0, false
	}
	return n << shift, true
}
