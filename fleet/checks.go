package fleet

import (
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Names that reach a command line (mmdebstrap's, apt's) are checked against what Debian accepts, so
// that none can be read as an option ("--hook-dir=...") or split into two words.
var (
	// debianPackage is Debian policy §5.6.7's package name (lower case letters, digits, + - .; at
	// least two characters, starting alphanumeric), optionally pinned as apt accepts it:
	// NAME=VERSION or NAME/RELEASE.
	debianPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+|/[a-z0-9][a-z0-9.-]*)?$`)
	// debianSuite is a suite or codename as archives name them: "bookworm", "bookworm-backports",
	// "stable".
	debianSuite = regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*$`)
	// debianComponent is an archive area: "main", "contrib", "non-free-firmware".
	debianComponent = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// checkNames reports each element of a decoded list attribute that does not match pattern.
func (d *decoder) checkNames(attrs hcl.Attributes, name string, values []string, pattern *regexp.Regexp, what string) {
	for _, v := range values {
		if !pattern.MatchString(v) {
			d.errorf(attrs[name].Expr.Range(), "Invalid "+what,
				"%q holds %s names as Debian spells them (lower case letters, digits, '+', '-' and '.', starting with a letter or digit), got %q.", name, what, v)
		}
	}
}

// nonEmpty reports a required string attribute that is set to "" at the attribute itself. It
// returns whether the value may be used.
func (d *decoder) nonEmpty(attrs hcl.Attributes, name, value, what string) bool {
	if attr, set := attrs[name]; set && strings.TrimSpace(value) == "" {
		d.errorf(attr.Expr.Range(), "Empty value", "%q must not be empty: it names %s.", name, what)
		return false
	}
	return true
}

// fileDestProblem says what is wrong with a file destination inside the image, or "".
func fileDestProblem(dest string) string {
	switch {
	case !path.IsAbs(dest):
		return "File destinations are absolute paths inside the image"
	case strings.ContainsAny(dest, "\x00\n\r"):
		return "File destinations hold no NUL byte and no line break"
	case path.Clean(dest) == "/":
		return "A file destination names a file inside the image, not its root directory"
	case strings.HasSuffix(dest, "/"):
		return "A file destination names a file, not a directory"
	}
	return ""
}

// healthPathProblem says what is wrong with an http health check's path, or "". The path is put
// after the instance's address; one that does not start with "/" could change the host the check
// asks ("@169.254.169.254/..." turns the address into user information).
func healthPathProblem(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "\"path\" is a URL path starting with a single \"/\", such as \"/healthz\""
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }) {
		return "\"path\" holds no spaces or control characters (escape them as %20 and the like)"
	}
	u, err := url.Parse("http://instance.invalid" + p)
	if err != nil || u.Host != "instance.invalid" || u.User != nil || u.Fragment != "" {
		return "\"path\" must be a URL path with an optional ?query, such as \"/healthz?full=1\""
	}
	return ""
}

// dnsNameProblem says what is wrong with a record name or a name asked, or "": letters, digits, '-'
// and '_' in dot-separated labels of 1 to 63 characters, 253 in all, a final dot allowed, "@" for the
// apex and a leading "*" label for a wildcard. A newline or space would break a zone file and the
// API calls that carry the name.
func dnsNameProblem(name string) string {
	if name == "@" {
		return ""
	}
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return "a DNS name is 1 to 253 characters"
	}
	for i, label := range strings.Split(n, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return "each label of a DNS name (between dots) is 1 to 63 characters"
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "a DNS name holds letters, digits, '-' and '_' in labels separated by dots"
			}
		}
	}
	return ""
}

// mapEntryRange is the range of the value of key in an object constructor ({ "k" = "v", ... }), so a
// problem with one entry is shown at its own line; the whole expression's range otherwise.
func (d *decoder) mapEntryRange(expr hcl.Expression, key string) hcl.Range {
	if obj, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			k, diags := item.KeyExpr.Value(d.ctx)
			if !diags.HasErrors() && k.IsKnown() && !k.IsNull() && k.Type().FriendlyName() == "string" && k.AsString() == key {
				return item.ValueExpr.Range()
			}
		}
	}
	return expr.Range()
}
