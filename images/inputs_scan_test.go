package images

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dev/drover/images/scan"
)

func TestScanAllowlistIsAnInput(t *testing.T) {
	f, role, _ := testFleet(t)
	in, err := ComputeInputs(f, role, "v1", "agentsum")
	if err != nil {
		t.Fatal(err)
	}
	without := in.Identity()
	if in.ScanAllowlist != "" {
		t.Errorf("no allowlist file, but ScanAllowlist %q", in.ScanAllowlist)
	}
	allow := filepath.Join(f.Dir, scan.AllowlistName)
	if ScanAllowlistPath(f) != allow {
		t.Errorf("ScanAllowlistPath = %q", ScanAllowlistPath(f))
	}
	var ids []string
	for _, content := range []string{"/srv/fixtures/\n", "/srv/fixtures/\nprivate-key:/etc/demo.key\n"} {
		if err := os.WriteFile(allow, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := ComputeInputs(f, role, "v1", "agentsum")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.Identity())
	}
	if ids[0] == without || ids[1] == ids[0] {
		t.Error("adding or changing the allowlist does not change the identity")
	}
	f.Dir = ""
	if ScanAllowlistPath(f) != "" {
		t.Error("a fleet without a directory has an allowlist path")
	}
}
