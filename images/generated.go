package images

import (
	"path"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// SecretTemplateDir is where an image keeps the templates of its secret blocks; drover-boot reads
// them there at boot. They hold no secret (the scan checks them like every other file).
const SecretTemplateDir = "/etc/drover/secret-templates"

// SecretTemplatePath is the path inside the image of the template of the secret file name.
func SecretTemplatePath(name string) string { return path.Join(SecretTemplateDir, name+".tmpl") }

// bootDependency makes a unit wait for drover-boot and stay down when it failed: Requires= fails
// the unit's start when drover-boot's start fails, After= orders it behind drover-boot's READY
// (drover-boot is Type=notify and signals it once every secret is written).
const bootDependency = "Requires=drover-boot.service\nAfter=drover-boot.service\n"

// bootDropIn ties a role's service to drover-boot (bootDependency).
const bootDropIn = "# drover: start only after drover-boot has written this instance's secrets; not at all if it failed.\n[Unit]\n" + bootDependency

// GeneratedFiles are the files drover adds to a role's image for what the role declares: the
// template of each secret block, and for each of its services a systemd drop-in that ties it to
// drover-boot. They are inputs of the image's identity like the role's own files. A role with
// containers also gets their units and storage.conf (containerFiles).
func GeneratedFiles(role *fleet.Role) []fleet.File {
	var out []fleet.File
	for _, s := range role.Image.SecretFiles {
		if s.Template != "" {
			out = append(out, fleet.File{Dest: SecretTemplatePath(s.Name), Source: s.Template, Mode: 0o644, Owner: "root:root"})
		}
	}
	for _, svc := range role.Image.Services {
		unit := svc
		if !strings.Contains(unit, ".") {
			unit += ".service"
		}
		content := bootDropIn
		out = append(out, fleet.File{Dest: "/etc/systemd/system/" + unit + ".d/50-drover-boot.conf", Content: &content, Mode: 0o644, Owner: "root:root"})
	}
	return append(out, containerFiles(role)...)
}

// RoleFiles are every file a role's image gets from the fleet: its own, then GeneratedFiles.
func RoleFiles(role *fleet.Role) []fleet.File {
	return append(append([]fleet.File{}, role.Image.Files...), GeneratedFiles(role)...)
}
