package fleet

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var (
	secretSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "path", Required: true}, {Name: "field"}, {Name: "template"}, {Name: "owner"}, {Name: "mode"},
	}}
	// The same shapes drover-boot accepts in user-data: a plain file name, a KV version 2 data path.
	secretNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}$`)
	secretPathPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*/data(/[A-Za-z0-9_.-]+)+$`)
)

// decodeSecret reads a secret "NAME" block: the file drover-boot writes to /run/drover/secrets/NAME
// at boot from one KV version 2 path, as one field, a template rendered with the path's fields, or
// all fields as JSON.
func (d *decoder) decodeSecret(f *Fleet, b *hcl.Block, opts Options) (SecretFile, bool) {
	sf := SecretFile{Name: b.Labels[0], Range: b.DefRange}
	ok := true
	if !secretNamePattern.MatchString(sf.Name) || sf.Name == "." || sf.Name == ".." {
		d.errorf(b.LabelRanges[0], "Invalid secret name",
			"A secret's name is its file name under /run/drover/secrets: letters, digits, '.', '_', '-', '@' and '+', no slash; got %q.", sf.Name)
		ok = false
	}
	c := d.content(b.Body, secretSchema)
	if d.str(c.Attributes, "path", &sf.Path) {
		if parts := strings.Split(sf.Path, "/"); !secretPathPattern.MatchString(sf.Path) || contains(parts, "..") || contains(parts, ".") {
			d.errorf(c.Attributes["path"].Expr.Range(), "Invalid secret path",
				"\"path\" is a KV version 2 data path, MOUNT/data/PATH such as \"kv/data/web/tls\"; got %q.", sf.Path)
			ok = false
		}
	}
	d.str(c.Attributes, "field", &sf.Field)
	var tmpl string
	if d.str(c.Attributes, "template", &tmpl) {
		if sf.Field != "" {
			d.errorf(c.Attributes["template"].Range, "Conflicting arguments", "A secret takes either \"field\" or \"template\", not both.")
			ok = false
		}
		sf.Template = resolvePath(f.Dir, tmpl)
		if !d.checkSource(opts, c.Attributes["template"].Expr.Range(), tmpl, sf.Template, f.shownDir) {
			ok = false
		}
	}
	if d.str(c.Attributes, "owner", &sf.Owner) && (!strings.Contains(sf.Owner, ":") || !ownerPattern.MatchString(sf.Owner)) {
		d.errorf(c.Attributes["owner"].Expr.Range(), "Invalid secret owner", "\"owner\" must be \"user:group\" (names or numbers), got %q.", sf.Owner)
		ok = false
	}
	var mode string
	if d.str(c.Attributes, "mode", &mode) {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m&^0o640 != 0 || m&0o400 == 0 {
			d.errorf(c.Attributes["mode"].Expr.Range(), "Invalid secret mode",
				"A secret's \"mode\" lets its owner read it and grants at most 0640 (owner read-write, group read), as an octal string such as \"0400\" or \"0440\"; got %q.", mode)
			ok = false
		}
		sf.Mode = fsMode(m)
	}
	return sf, ok
}
