package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/fleet"
)

func TestGeneratedFilesAreInputs(t *testing.T) {
	f, role, _ := testFleet(t)
	tmpl := filepath.Join(f.Dir, "htpasswd.tmpl")
	if err := os.WriteFile(tmpl, []byte("admin:{PLAIN}{{ .password }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	role.Image.SecretFiles = []fleet.SecretFile{
		{Name: "tls.key", Path: "kv/data/web/tls", Field: "key"},
		{Name: "htpasswd", Path: "kv/data/web/app", Template: tmpl},
	}
	role.Image.Services = []string{"nginx", "php8.2-fpm.service"}

	got := map[string]fleet.File{}
	for _, file := range GeneratedFiles(role) {
		got[file.Dest] = file
	}
	if len(got) != 3 {
		t.Fatalf("generated files: %+v", got)
	}
	if file, ok := got["/etc/drover/secret-templates/htpasswd.tmpl"]; !ok || file.Source != tmpl || file.Mode != 0o644 {
		t.Errorf("template file: %+v (found %v)", file, ok)
	}
	for _, unit := range []string{"nginx.service", "php8.2-fpm.service"} {
		file, ok := got["/etc/systemd/system/"+unit+".d/50-drover-boot.conf"]
		if !ok || file.Content == nil || !strings.Contains(*file.Content, "Requires=drover-boot.service\nAfter=drover-boot.service\n") {
			t.Errorf("drop-in of %s: %+v (found %v)", unit, file, ok)
		}
	}

	in, err := ComputeInputs(f, role, "v0.1.0", "agentsum")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(in.Secrets, " ") != "kv/data/web/app kv/data/web/tls" {
		t.Errorf("inputs' secrets = %v, want both blocks' paths", in.Secrets)
	}
	id := in.Identity()
	if err := os.WriteFile(tmpl, []byte("root:{PLAIN}{{ .password }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if in2, err := ComputeInputs(f, role, "v0.1.0", "agentsum"); err != nil || in2.Identity() == id {
		t.Errorf("changing a secret template kept the identity (%v)", err)
	}
	role.Image.Services = []string{"nginx"}
	if in3, err := ComputeInputs(f, role, "v0.1.0", "agentsum"); err != nil || in3.Identity() == id {
		t.Errorf("changing the services kept the identity (%v)", err)
	}
}
