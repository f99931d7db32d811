package rootfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// TestScanReusesTheBaseTreesResults: the second scan of a work tree made from the same base tree
// reads only the files changed since the copy, and still finds a secret planted in one of them.
func TestScanReusesTheBaseTreesResults(t *testing.T) {
	work := writeTree(t, map[string]string{"/etc/motd": "hello\n", "/var/www/html/index.html": "<h1>hi</h1>\n",
		"/usr/share/doc/a": strings.Repeat("text ", 100)})
	cache := t.TempDir()
	run := func(copied time.Time) (multistep.StepAction, multistep.StateBag, string) {
		state := new(multistep.BasicStateBag)
		state.Put(keyRequest, &Request{Role: "web", Cache: &tree.Cache{Dir: cache}})
		state.Put(keyTree, work)
		state.Put(keyBase, "/cache/trees/basekey")
		state.Put(keyCopied, copied)
		var log bytes.Buffer
		state.Put(keyLog, &log)
		return (&stepScan{}).Run(context.Background(), state), state, log.String()
	}
	copied := time.Now().Add(time.Hour) // every file "unchanged since the copy"
	action, state, log := run(copied)
	if action != multistep.ActionContinue || !strings.Contains(log, "0 unchanged base file(s) not read again") {
		t.Fatalf("first scan: %v\n%s", state.Get(keyError), log)
	}
	first := state.Get(keyScan).(images.ScanStats)
	kept, _ := filepath.Glob(filepath.Join(cache, scanBaselineDir, "basekey-*.json.gz"))
	if len(kept) != 1 {
		t.Fatalf("baselines kept: %v", kept)
	}
	action, state, log = run(copied)
	if action != multistep.ActionContinue || !strings.Contains(log, "3 unchanged base file(s) not read again") {
		t.Fatalf("second scan: %v\n%s", state.Get(keyError), log)
	}
	if got := state.Get(keyScan).(images.ScanStats); got != first {
		t.Errorf("stats %+v, first scan %+v", got, first)
	}
	// A file changed after the copy is read again: its planted token fails the build.
	before := time.Now().Add(-time.Second)
	token := "gh" + "p_" + strings.Repeat("aB3", 12)
	if err := os.WriteFile(filepath.Join(work, "var/www/html/index.html"), []byte("GITHUB_TOKEN="+token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	action, state, log = run(before)
	if action != multistep.ActionHalt || !strings.Contains(log, "/var/www/html/index.html:1: github-token") {
		t.Fatalf("a changed file with a secret passed: %v\n%s", state.Get(keyError), log)
	}
}
