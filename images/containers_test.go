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
	role.Image.Containers = []fleet.Container{{Name: "app", Image: "127.0.0.1:5000/drover/app:1", Digest: digest, Engine: "podman",
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
