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

// containerFiles are the files a role with containers gets: storage.conf, one unit per container
// that starts (fleet.ContainerUnit), the unit that loads the docker ones into Docker's store
// (fleet.DockerLoadUnit), and per Compose stack its file, the override naming the images as Docker
// has them, and its unit (fleet.ComposeUnit).
func containerFiles(role *fleet.Role) []fleet.File {
	if len(role.Image.Containers) == 0 {
		return nil
	}
	conf := containerStorageConf
	out := []fleet.File{{Dest: fleet.ContainerStorageConf, Content: &conf, Mode: 0o644, Owner: "root:root"}}
	var docker []fleet.Container
	for _, c := range role.Image.Containers {
		if c.Engine == "docker" {
			docker = append(docker, c)
		}
		if !c.Start {
			continue
		}
		unit := ContainerUnitText(role.Name, c)
		out = append(out, fleet.File{Dest: "/etc/systemd/system/" + fleet.ContainerUnit(c.Name), Content: &unit, Mode: 0o644, Owner: "root:root"})
	}
	if len(docker) > 0 {
		unit := DockerLoadUnitText(role.Name, docker)
		out = append(out, fleet.File{Dest: "/etc/systemd/system/" + fleet.DockerLoadUnit, Content: &unit, Mode: 0o644, Owner: "root:root"})
	}
	for _, c := range role.Image.Composes {
		dir := fleet.ComposeDir(c.Name)
		override, unit := ComposeOverrideText(c), ComposeUnitText(role.Name, c)
		out = append(out,
			fleet.File{Dest: dir + "/" + fleet.ComposeFileName, Source: c.File, Mode: 0o644, Owner: "root:root"},
			fleet.File{Dest: dir + "/" + fleet.ComposeOverrideName, Content: &override, Mode: 0o644, Owner: "root:root"},
			fleet.File{Dest: "/etc/systemd/system/" + fleet.ComposeUnit(c.Name), Content: &unit, Mode: 0o644, Owner: "root:root"})
	}
	return out
}

// ContainerUnitText is the systemd unit that runs a container at boot from the image's store:
// --pull=never, so an instance never reaches a registry, and by digest (podman) or by the tag
// that carries the digest (docker, fleet.Container.DockerTag), so it runs the bytes the build
// baked whatever tag the store also knows.
func ContainerUnitText(role string, c fleet.Container) string {
	// docker has no --ignore: its rm and stop of a missing container fail, and "-" lets them.
	engine, ref, requires := "/usr/bin/podman", c.Ref(), ""
	rm, stop := "-/usr/bin/podman rm --force --ignore", "/usr/bin/podman stop --ignore --time 10"
	if c.Engine == "docker" {
		engine, ref = "/usr/bin/docker", c.DockerTag()
		requires = fmt.Sprintf("Requires=docker.service %[1]s\nAfter=docker.service %[1]s\n", fleet.DockerLoadUnit)
		rm, stop = "-/usr/bin/docker rm --force", "-/usr/bin/docker stop --time 10"
	}
	run := []string{engine, "run", "--rm", "--pull=never", "--name", c.Name, "--network=" + c.Network}
	for _, v := range c.Volumes {
		run = append(run, "--volume="+v)
	}
	run = append(run, ref)
	run = append(run, c.Command...)
	var b strings.Builder
	fmt.Fprintf(&b, "# drover: container %q of role %q, baked into the image from %s; never pulled.\n", c.Name, role, c.Image)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=drover container %s (%s)\n", c.Name, c.Image)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	// The container may read the secrets and certificates drover-boot writes.
	b.WriteString(bootDependency + requires + "\n")
	b.WriteString("[Service]\n")
	fmt.Fprintf(&b, "ExecStartPre=%s %s\n", rm, systemdQuote(c.Name))
	fmt.Fprintf(&b, "ExecStart=%s\n", systemdCommand(run))
	fmt.Fprintf(&b, "ExecStop=%s %s\n", stop, systemdQuote(c.Name))
	b.WriteString("Restart=on-failure\nRestartSec=2\n\n")
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// DockerLoadUnitText is the oneshot unit that copies a role's docker containers, with skopeo, from
// the store the build baked them into (the same vfs store as podman's) into Docker's, under
// fleet.Container.DockerTag, each only when Docker does not have it yet (the first boot of an
// instance). Docker's own store is written only by a running dockerd, which a build does not
// start; the baked store is what the secret scan read.
func DockerLoadUnitText(role string, containers []fleet.Container) string {
	store := fmt.Sprintf("containers-storage:[%s@%s+%s]", tree.ContainerDriver, tree.ContainerGraphRoot, tree.ContainerRunRoot)
	var b strings.Builder
	fmt.Fprintf(&b, "# drover: the docker containers of role %q, baked into %s at build time, copied into Docker's store at first boot.\n", role, tree.ContainerGraphRoot)
	b.WriteString("[Unit]\n")
	b.WriteString("Description=drover: load the baked container images into Docker\n")
	b.WriteString("Requires=docker.service\nAfter=docker.service\n\n")
	// On the console too: a load that fails says why where the lab and a cloud's console show it.
	b.WriteString("[Service]\nType=oneshot\nRemainAfterExit=yes\nTimeoutStartSec=30min\nStandardOutput=journal+console\nStandardError=journal+console\n")
	for _, c := range containers {
		tag := c.DockerTag()
		script := fmt.Sprintf("/usr/bin/docker image inspect %s >/dev/null 2>&1 || /usr/bin/skopeo --insecure-policy copy --quiet %s docker-daemon:%s",
			shellQuote(tag), shellQuote(store+c.Ref()), shellQuote(tag))
		fmt.Fprintf(&b, "ExecStart=/bin/sh -c %s\n", systemdQuote(script))
	}
	return b.String()
}

// ComposeOverrideText is the override file docker-compose reads after the stack's own: each
// service's image as Docker has it (fleet.Container.DockerTag; Docker keeps no digest for an image
// it did not pull), which it has before the stack starts (DockerLoadUnit): docker-compose up pulls only a missing image.
func ComposeOverrideText(c fleet.Compose) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# drover: the images of the Compose stack %q as the image's Docker store has them (baked by digest, loaded at boot).\n", c.Name)
	if c.Version != "" {
		fmt.Fprintf(&b, "version: %s\n", yamlQuote(c.Version))
	}
	b.WriteString("services:\n")
	for _, s := range c.Services {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n", yamlQuote(s.Name), yamlQuote(s.Container.DockerTag()))
	}
	return b.String()
}

// ComposeUnitText is the systemd unit that runs a Compose stack at boot with docker-compose, after
// drover-boot and the load of its images: --no-build, and every image is in Docker's store.
func ComposeUnitText(role string, c fleet.Compose) string {
	dir := fleet.ComposeDir(c.Name)
	base := []string{"/usr/bin/docker-compose", "--project-name", c.Name, "--project-directory", dir,
		"--file", dir + "/" + fleet.ComposeFileName, "--file", dir + "/" + fleet.ComposeOverrideName}
	var b strings.Builder
	fmt.Fprintf(&b, "# drover: Compose stack %q of role %q; its images were baked into the image, never pulled.\n", c.Name, role)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=drover Compose stack %s\n", c.Name)
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	b.WriteString(bootDependency)
	fmt.Fprintf(&b, "Requires=docker.service %[1]s\nAfter=docker.service %[1]s\n\n", fleet.DockerLoadUnit)
	b.WriteString("[Service]\n")
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", dir)
	fmt.Fprintf(&b, "ExecStart=%s\n", systemdCommand(append(base, "up", "--no-build", "--no-color", "--remove-orphans")))
	fmt.Fprintf(&b, "ExecStop=%s\n", systemdCommand(append(base, "down")))
	b.WriteString("Restart=on-failure\nRestartSec=5\nTimeoutStartSec=10min\nStandardError=journal+console\n\n")
	b.WriteString("[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// shellQuote quotes a word for sh: single quotes, a single quote in it closed and escaped.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// yamlQuote is s as a double-quoted YAML scalar.
func yamlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
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
