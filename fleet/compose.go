package fleet

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"gopkg.in/yaml.v3"
)

// Compose is a compose "NAME" block of a role's image: a Compose file of the fleet's repo that
// docker-compose runs at boot as the project NAME (ComposeUnit). Every image it names is a docker
// container block of the same role, pinned by the same digest: the stack starts from what the
// build baked, never from a registry.
type Compose struct {
	Name string
	// File is the Compose file's absolute path on the build host; it is baked as
	// ComposeDir(Name)/ComposeFileName, an input of the identity like the role's files.
	File string
	// Version is the file's top-level "version", empty when it has none: the override drover
	// writes next to it must declare the same one for docker-compose to merge them.
	Version  string
	Services []ComposeService // in the file's order
	Range    hcl.Range
}

// ComposeService is one service of a Compose file and the container block that bakes its image.
type ComposeService struct {
	Name      string
	Image     string    // as the file writes it: REPOSITORY[:TAG]@sha256:HEX
	Container Container // the docker container block with that repository and digest
	Range     hcl.Range // the image's value in the Compose file
}

// Where a Compose stack lives in the image, and the unit that runs it.
const (
	ComposeFileName     = "compose.yml"
	ComposeOverrideName = "drover-images.yml"
)

// ComposeDir is the project directory of the stack NAME in the image: its Compose file, the
// override with the images Docker has, and what the role's file blocks put there (files the
// Compose file names by a relative path).
func ComposeDir(name string) string { return "/etc/drover/compose/" + name }

// ComposeUnit is the systemd unit that runs the Compose stack NAME.
func ComposeUnit(name string) string { return "drover-compose-" + name + ".service" }

var (
	composeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "file", Required: true}}}
	// composeNamePattern is what docker-compose accepts as a project name.
	composeNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// decodeCompose reads a compose "NAME" block and the Compose file it names. The file's images are
// matched with the role's container blocks later (checkComposeImages), once every block is read.
// A service in error is reported and left out, and the stack is still returned (ok) so that the
// other services' images are checked too; ok is false when the file itself cannot be used.
func (d *decoder) decodeCompose(f *Fleet, b *hcl.Block, opts Options) (Compose, bool) {
	c := Compose{Name: b.Labels[0], Range: b.DefRange}
	ok := true
	if !composeNamePattern.MatchString(c.Name) {
		d.errorf(b.LabelRanges[0], "Invalid Compose stack name",
			"A compose block's name is the stack's project name and names its unit (%s): lower-case letters, digits, '_' and '-', starting with a letter or digit; got %q.", ComposeUnit("NAME"), c.Name)
		ok = false
	}
	attrs := d.content(b.Body, composeSchema).Attributes
	var written string
	if !d.str(attrs, "file", &written) {
		return c, false
	}
	rng := attrs["file"].Expr.Range()
	c.File = resolvePath(f.Dir, written)
	if !d.checkSource(opts, rng, written, c.File, f.shownDir) {
		return c, false
	}
	src, err := readRegularFile(c.File, MaxReadFileSize)
	if err != nil {
		d.errorf(rng, "Cannot read Compose file", "%s.", err)
		return c, false
	}
	shown := shownPath(written, f.shownDir)
	if d.files != nil {
		d.files[shown] = &hcl.File{Bytes: src}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		d.errorf(rng, "Invalid Compose file", "%s is not YAML docker-compose can read: %s.", shown, strings.TrimPrefix(err.Error(), "yaml: "))
		return c, false
	}
	top := mappingOf(&doc)
	if top == nil {
		d.errorf(rng, "Invalid Compose file", "%s is not a Compose file: its top level is not a mapping.", shown)
		return c, false
	}
	if v := mapValue(top, "version"); v != nil && v.Kind == yaml.ScalarNode {
		c.Version = v.Value
	}
	services := mapValue(top, "services")
	if services == nil || services.Kind != yaml.MappingNode || len(services.Content) == 0 {
		d.errorf(rng, "Invalid Compose file", "%s names no services (a top-level \"services\" mapping); a stack with nothing to run is a mistake.", shown)
		return c, false
	}
	for i := 0; i+1 < len(services.Content); i += 2 {
		key, body := services.Content[i], services.Content[i+1]
		svc := ComposeService{Name: key.Value, Range: yamlRange(shown, src, key)}
		if body.Kind != yaml.MappingNode {
			d.errorf(svc.Range, "Invalid Compose service", "The service %q of the Compose stack %q is not a mapping.", svc.Name, c.Name)
			continue
		}
		if k, _ := mapEntry(body, "build"); k != nil {
			d.errorf(yamlRange(shown, src, k), "Compose service builds its image",
				"The service %q of the Compose stack %q builds its image, which an instance would do at boot from sources the image does not pin. Build and push it, then bake it by digest: a container block with engine = \"docker\" and start = false, and image: REPOSITORY@sha256:... in the Compose file.", svc.Name, c.Name)
			continue
		}
		img := mapValue(body, "image")
		if img == nil || img.Kind != yaml.ScalarNode {
			d.errorf(svc.Range, "Compose service without an image",
				"The service %q of the Compose stack %q names no image; every service runs an image baked by a container block of the role.", svc.Name, c.Name)
			continue
		}
		svc.Image, svc.Range = img.Value, yamlRange(shown, src, img)
		c.Services = append(c.Services, svc)
	}
	return c, ok
}

// checkComposeImages matches every image of img's Compose stacks with a docker container block of
// the role: same repository, same digest. An image without a digest, or one no block bakes, is an
// error at the image in the Compose file, with the block that would bake it.
func (d *decoder) checkComposeImages(img *Image) {
	for ci := range img.Composes {
		c := &img.Composes[ci]
		for si := range c.Services {
			s := &c.Services[si]
			ref, digest, pinned := strings.Cut(s.Image, "@")
			repo := repository(ref)
			block := fmt.Sprintf("container %q {\n    image  = %q\n    digest = \"sha256:...\"\n    engine = \"docker\"\n    start  = false\n  }", s.Name, ref)
			switch {
			case !namesRegistry(ref):
				d.errorf(s.Range, "Invalid image reference",
					"The service %q of the Compose stack %q runs %q: an image of a Compose stack is REGISTRY[:PORT]/REPOSITORY[:TAG]@sha256:HEX, the registry named, as its container block bakes it.", s.Name, c.Name, s.Image)
				continue
			case !pinned || !digestPattern.MatchString(digest):
				d.errorf(s.Range, "Compose image not pinned",
					"The service %q of the Compose stack %q runs %q without a digest: the instance would pull it at boot. Pin it with the digest the tag has now:\n  skopeo inspect --format '{{.Digest}}' docker://%s\nwrite image: %s@sha256:... in the Compose file, and bake it in the role's image:\n  %s", s.Name, c.Name, s.Image, ref, ref, block)
				continue
			}
			// The same image may be baked for both engines: the docker block is the one the stack runs.
			found, podman := false, -1
			for i, ct := range img.Containers {
				if ct.Digest != digest || repository(ct.Image) != repo {
					continue
				}
				if ct.Engine != "docker" {
					podman = i
					continue
				}
				found, s.Container = true, ct
				break
			}
			if !found && podman >= 0 {
				ct := img.Containers[podman]
				d.errorf(s.Range, "Compose image baked for podman",
					"The service %q of the Compose stack %q runs the image of the container %q (%s), which is baked for podman; docker-compose runs Docker's images: set engine = \"docker\" in that block.", s.Name, c.Name, ct.Name, pos(ct.Range))
				continue
			}
			if !found {
				block = strings.Replace(block, `"sha256:..."`, fmt.Sprintf("%q", digest), 1)
				d.errorf(s.Range, "Compose image not baked",
					"The service %q of the Compose stack %q runs %s, which no container block of the role bakes: the instance would pull it at boot. Bake it in the role's image:\n  %s", s.Name, c.Name, s.Image, block)
			}
		}
	}
}

// mappingOf is the mapping at the top of a YAML document, nil when it is something else.
func mappingOf(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		return doc.Content[0]
	}
	return nil
}

// mapEntry is the key and value of key in the YAML mapping m, nil when it has none.
func mapEntry(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// mapValue is the value of key in the YAML mapping m, nil when it has none.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(m, key)
	return v
}

// yamlRange is where the scalar n is in the file src (shown as name): a range on one line, with
// byte offsets so that diagnostics sort and quote it like the fleet file's.
func yamlRange(name string, src []byte, n *yaml.Node) hcl.Range {
	off := 0
	for line := 1; line < n.Line; line++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
	}
	start := hcl.Pos{Line: n.Line, Column: n.Column, Byte: off + n.Column - 1}
	width := len(n.Value)
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		width += 2
	}
	end := hcl.Pos{Line: n.Line, Column: n.Column + width, Byte: start.Byte + width}
	return hcl.Range{Filename: name, Start: start, End: end}
}
