package images

import (
	"fmt"
	"strings"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images/tree"
)

// ContainerInput is a container block as the identity sees it: the digest pins the bytes, so a
// build does not ask the registry anything to know whether it would bake the same image. The
// unit that runs it is a generated file, covered with the role's files.
type ContainerInput struct {
	Name   string `json:"name"`
	Image  string `json:"image"`
	Digest string `json:"digest"`
	Engine string `json:"engine"`
}

// ContainerInputs are the role's container blocks for Inputs, nil for none (so that the identity
// of a role without containers is what it was before they existed).
func ContainerInputs(role *fleet.Role) []ContainerInput {
	var out []ContainerInput
	for _, c := range role.Image.Containers {
		out = append(out, ContainerInput{Name: c.Name, Image: c.Image, Digest: c.Digest, Engine: c.Engine})
	}
	return out
}

// containerStorageConf is /etc/containers/storage.conf of an image with containers: the driver and
// paths the build wrote the store with (tree.CopyContainer), which the engine must read it with.
var containerStorageConf = fmt.Sprintf(`# drover: the container images of this role were baked into this store at build time.
[storage]
driver = %q
graphroot = %q
runroot = %q
`, tree.ContainerDriver, tree.ContainerGraphRoot, tree.ContainerRunRoot)

// containerFiles are the files a role with containers gets: storage.conf and one unit per
// container (fleet.ContainerUnit).
func containerFiles(role *fleet.Role) []fleet.File {
	if len(role.Image.Containers) == 0 {
		return nil
	}
	conf := containerStorageConf
	out := []fleet.File{{Dest: fleet.ContainerStorageConf, Content: &conf, Mode: 0o644, Owner: "root:root"}}
	for _, c := range role.Image.Containers {
		unit := ContainerUnitText(role.Name, c)
		out = append(out, fleet.File{Dest: "/etc/systemd/system/" + fleet.ContainerUnit(c.Name), Content: &unit, Mode: 0o644, Owner: "root:root"})
	}
	return out
}

// ContainerUnitText is the systemd unit that runs a container at boot from the image's store:
// --pull=never, so an instance never reaches a registry, and by digest, so it runs the bytes the
// build baked whatever tag the store also knows.
func ContainerUnitText(role string, c fleet.Container) string {
	run := []string{"/usr/bin/podman", "run", "--rm", "--pull=never", "--name", c.Name, "--network=" + c.Network}
	for _, v := range c.Volumes {
		run = append(run, "--volume="+v)
	}
	run = append(run, c.Ref())
	run = append(run, c.Command...)
	var b strings.Builder
	fmt.Fprintf(&b, "# drover: container %q of role %q, baked into the image from %s; never pulled.\n", c.Name, role, c.Image)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=drover container %s (%s)\n", c.Name, c.Image)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\n")
	fmt.Fprintf(&b, "ExecStartPre=-/usr/bin/podman rm --force --ignore %s\n", systemdQuote(c.Name))
	fmt.Fprintf(&b, "ExecStart=%s\n", systemdCommand(run))
	fmt.Fprintf(&b, "ExecStop=/usr/bin/podman stop --ignore --time 10 %s\n", systemdQuote(c.Name))
	b.WriteString("Restart=on-failure\nRestartSec=2\n\n")
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// systemdCommand is argv as an Exec line: each word quoted so that systemd passes it as it is.
func systemdCommand(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = systemdQuote(a)
	}
	return strings.Join(words, " ")
}

// systemdQuote quotes a word for an Exec line: double quotes, backslash escapes, and % and $
// doubled so that systemd expands no specifier or variable in it.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
