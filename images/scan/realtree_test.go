package scan

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestRealTree scans a real root filesystem tree read-only, such as a cached bookworm base tree:
//
//	DROVER_SCAN_TREE=/var/tmp/drover-test-cache/drover/trees/KEY go test -run RealTree -v ./images/scan/
//
// A stock Debian tree must give no finding with the default allowlist.
func TestRealTree(t *testing.T) {
	root := os.Getenv("DROVER_SCAN_TREE")
	if root == "" {
		t.Skip("DROVER_SCAN_TREE is not set: no real tree to scan (cached base trees are in DROVER_TEST_CACHE/drover/trees/)")
	}
	// A cached base tree is taken before hygiene, which removes the SSH host keys that
	// openssh-server's postinst made; an image never has them.
	hygiene, err := ParseAllowlist(strings.NewReader("private-key:/etc/ssh/ssh_host_*_key\n"), "before hygiene")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Scan(context.Background(), root, Options{Allowlist: hygiene})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d files (%d not read by the rules), %.1f MiB in %s, %d allowlisted", root, r.FilesScanned, r.FilesSkipped,
		float64(r.BytesScanned)/(1<<20), r.Duration.Round(1e6), r.Suppressed)
	for _, f := range r.Findings {
		t.Errorf("finding: %s", f)
	}
}
