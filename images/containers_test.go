package images

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/drover-dev/drover/fleet"
)

// TestContainerUnitAndIdentity checks the files a container block generates (storage.conf naming
// the driver the build writes with, and a unit that runs the image by digest without pulling, its
// arguments quoted for systemd) and that the digest and engine are inputs of the identity while a
// role without containers keeps the identity it had before they existed.
func TestContainerUnitAndIdentity(t *testing.T) {
	f, role, _ := testFleet(t)
	in0, err := ComputeInputs(f, role, "v0.1.0", "agentsum")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mustJSON(t, in0)), "containers") {
		t.Errorf("inputs of a role without containers mention them: %s", mustJSON(t, in0))
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	role.Image.Containers = []fleet.Container{{Name: "app", Image: "127.0.0.1:5000/drover/app:1", Digest: digest, Engine: "podman", Start: true,
		Network: "host", Command: []string{"-say", `50% "off" $HOME`}, Volumes: []string{"/run/drover/secrets:/secrets:ro"}}}

	got := map[string]fleet.File{}
	for _, file := range GeneratedFiles(role) {
		got[file.Dest] = file
	}
	conf, ok := got["/etc/containers/storage.conf"]
	if !ok || !strings.Contains(*conf.Content, `driver = "vfs"`) || !strings.Contains(*conf.Content, `graphroot = "/var/lib/containers/storage"`) {
		t.Errorf("storage.conf: %+v (found %v)", conf, ok)
	}
	unit, ok := got["/etc/systemd/system/drover-container-app.service"]
	if !ok {
		t.Fatalf("no unit for the container: %v", got)
	}
	wantExec := `ExecStart="/usr/bin/podman" "run" "--rm" "--pull=never" "--name" "app" "--network=host" "--volume=/run/drover/secrets:/secrets:ro" "127.0.0.1:5000/drover/app@` + digest + `" "-say" "50%% \"off\" $$HOME"` + "\n"
	if !strings.Contains(*unit.Content, wantExec) || !strings.Contains(*unit.Content, "WantedBy=multi-user.target\n") {
		t.Errorf("unit:\n%s\nwant the line %s", *unit.Content, wantExec)
	}

	in1, err := ComputeInputs(f, role, "v0.1.0", "agentsum")
	if err != nil {
		t.Fatal(err)
	}
	if len(in1.Containers) != 1 || in1.Containers[0].Digest != digest || in1.Identity() == in0.Identity() {
		t.Errorf("inputs' containers = %+v", in1.Containers)
	}
	role.Image.Containers[0].Digest = "sha256:" + strings.Repeat("cd", 32)
	if in2, err := ComputeInputs(f, role, "v0.1.0", "agentsum"); err != nil || in2.Identity() == in1.Identity() {
		t.Errorf("another digest kept the identity (%v)", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDockerAndComposeFiles checks what a docker container and a Compose stack generate: the
// container's unit runs Docker's copy by the tag that carries the digest, after the load unit and
// drover-boot; the load unit copies each docker image from the baked store only when Docker lacks
// it; a container with start = false gets no unit; the Compose stack gets its file, an override
// naming the images as Docker has them (with the file's version), and a unit that does not build.
func TestDockerAndComposeFiles(t *testing.T) {
	_, role, _ := testFleet(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	web := fleet.Container{Name: "web", Image: "registry.example.net/app/web:1", Digest: digest, Engine: "docker", Network: "host", Start: true, Command: []string{"-listen", ":8081"}}
	db := fleet.Container{Name: "db", Image: "registry.example.net/app/db:16", Digest: "sha256:" + strings.Repeat("cd", 32), Engine: "docker", Network: "host"}
	role.Image.Containers = []fleet.Container{web, db}
	role.Image.Composes = []fleet.Compose{{Name: "app", File: "/fleet/app/compose.yml", Version: "3.8",
		Services: []fleet.ComposeService{{Name: "db", Image: db.Ref(), Container: db}}}}
	got := map[string]fleet.File{}
	for _, file := range GeneratedFiles(role) {
		got[file.Dest] = file
	}
	unit := got["/etc/systemd/system/drover-container-web.service"].Content
	if unit == nil {
		t.Fatalf("no unit for the docker container: %v", got)
	}
	for _, want := range []string{
		`ExecStart="/usr/bin/docker" "run" "--rm" "--pull=never" "--name" "web" "--network=host" "registry.example.net/app/web:drover-` + strings.Repeat("ab", 32) + `" "-listen" ":8081"` + "\n",
		"Requires=docker.service drover-docker-load.service\nAfter=docker.service drover-docker-load.service\n",
		"Requires=drover-boot.service\nAfter=drover-boot.service\n",
	} {
		if !strings.Contains(*unit, want) {
			t.Errorf("docker unit:\n%s\nwant %q", *unit, want)
		}
	}
	if _, ok := got["/etc/systemd/system/drover-container-db.service"]; ok {
		t.Errorf("db has start = false but got a unit")
	}
	load := got["/etc/systemd/system/drover-docker-load.service"].Content
	if load == nil || strings.Count(*load, "ExecStart=") != 2 || !strings.Contains(*load, "Type=oneshot\n") ||
		!strings.Contains(*load, `ExecStart=/bin/sh -c "/usr/bin/docker image inspect 'registry.example.net/app/db:drover-`+strings.Repeat("cd", 32)+`' >/dev/null 2>&1 || /usr/bin/skopeo --insecure-policy copy --quiet 'containers-storage:[vfs@/var/lib/containers/storage+/run/containers/storage]registry.example.net/app/db@`+db.Digest+`' docker-daemon:'registry.example.net/app/db:drover-`) {
		t.Errorf("load unit:\n%v", load)
	}
	if f := got["/etc/drover/compose/app/compose.yml"]; f.Source != "/fleet/app/compose.yml" {
		t.Errorf("the Compose file is baked from %q", f.Source)
	}
	override := got["/etc/drover/compose/app/drover-images.yml"].Content
	if override == nil || !strings.Contains(*override, "version: \"3.8\"\nservices:\n  \"db\":\n    image: \"registry.example.net/app/db:drover-"+strings.Repeat("cd", 32)+"\"\n") {
		t.Errorf("override:\n%v", override)
	}
	cunit := got["/etc/systemd/system/drover-compose-app.service"].Content
	if cunit == nil || !strings.Contains(*cunit, `"up" "--no-build"`) || !strings.Contains(*cunit, `"--file" "/etc/drover/compose/app/compose.yml" "--file" "/etc/drover/compose/app/drover-images.yml"`) ||
		!strings.Contains(*cunit, "After=docker.service drover-docker-load.service\n") || !strings.Contains(*cunit, "After=drover-boot.service\n") {
		t.Errorf("compose unit:\n%v", cunit)
	}
	if testing.Verbose() {
		t.Logf("%s\n%s\n%s\n%s", *unit, *load, *override, *cunit)
	}
}
