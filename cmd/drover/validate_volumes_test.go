package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateVolumesOnEveryCloud: a role with a volume validates on each cloud's compute, since
// each one's guest finds the volume where its provider says (issue 17; the refusal for a compute
// type without volumes is fleet's TestVolumeOnComputeWithoutVolumes).
func TestValidateVolumesOnEveryCloud(t *testing.T) {
	for typ, body := range map[string]string{
		"vultr":        "region = \"ams\"\n  storage_endpoint = \"https://ams1.vultrobjects.com\"\n  bucket = \"drover-images\"",
		"digitalocean": "region = \"ams3\"\n  spaces_bucket = \"drover-images\"",
		"aws":          "region = \"eu-west-1\"\n  subnet_id = \"subnet-0123456789abcdef0\"",
	} {
		t.Run(typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "drover.hcl")
			src := `compute "` + typ + `" "prod" {
  ` + body + `
}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute = "prod"
    volume "data" {
      size  = "20GiB"
      mount = "/var/lib/postgresql"
    }
  }
}
`
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := drover(t, nil, "--fleet", path, "validate")
			if code != exitOK || strings.Contains(stderr, "No volumes") {
				t.Errorf("validate exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
		})
	}
}
