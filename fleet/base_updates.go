package fleet

import (
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// decodeBaseUpdates reads whether a base installs from SUITE-updates and SUITE-security (by default
// it does) and from which security archive. Turning updates off needs a reason, which validate shows
// as a warning, since every image of the base then misses security fixes.
func (d *decoder) decodeBaseUpdates(c *hcl.BodyContent, base *Base) {
	if d.str(c.Attributes, "security_mirror", &base.SecurityMirror) {
		if u, err := url.Parse(base.SecurityMirror); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
			d.errorf(c.Attributes["security_mirror"].Expr.Range(), "Invalid security mirror",
				"\"security_mirror\" must be an http://, https:// or file:// URL of Debian's security archive (such as \"http://deb.debian.org/debian-security\"), got %q.", base.SecurityMirror)
		}
	}
	updates := true
	d.boolean(c.Attributes, "updates", &updates)
	base.UpdatesOff = !updates
	hasReason := d.str(c.Attributes, "updates_off_reason", &base.UpdatesOffReason)
	base.UpdatesOffReason = strings.TrimSpace(base.UpdatesOffReason)
	switch {
	case base.UpdatesOff && base.UpdatesOffReason == "":
		d.errorf(c.Attributes["updates"].Expr.Range(), "Updates turned off without a reason",
			"Base %q sets updates = false, so its images get no packages from %s-updates or %s-security; say why in updates_off_reason = \"...\", or remove updates = false.",
			base.Name, base.Suite, base.Suite)
	case hasReason && !base.UpdatesOff:
		d.errorf(c.Attributes["updates_off_reason"].Expr.Range(), "Reason without updates = false",
			"\"updates_off_reason\" explains updates = false, which base %q does not set; its images get %s-updates and %s-security. Remove the reason, or add updates = false.",
			base.Name, base.Suite, base.Suite)
	case base.UpdatesOff:
		d.warnf(c.Attributes["updates"].Expr.Range(), "Base without security updates",
			"Images of base %q get no packages from %s-updates or %s-security (%s).", base.Name, base.Suite, base.Suite, base.UpdatesOffReason)
	}
}
