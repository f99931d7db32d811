package scan

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestReuseGivesTheFullScan: a scan that reuses the recorded results of unchanged files reports what
// a scan reading everything reports, and reads only the changed files.
func TestReuseGivesTheFullScan(t *testing.T) {
	token := "gh" + "p_" + rnd(36)
	root := tree(t, map[string]string{
		"/etc/app.env":       "GITHUB_TOKEN=" + token + "\n",
		"/etc/motd":          "hello\n",
		"/usr/bin/tool":      "\x00\x01binary",
		"/var/www/page.html": "<h1>old</h1>\n",
	})
	ctx := context.Background()
	recorded := map[string]FileResult{}
	full, err := Scan(ctx, root, Options{Record: func(rel string, r FileResult) { recorded[rel] = r }})
	if err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 4 || len(full.Findings) != 1 {
		t.Fatalf("recorded %d files, %d findings", len(recorded), len(full.Findings))
	}
	// The page changes and gets a token; the others are reused.
	token2 := "gh" + "p_" + rnd(36)
	if err := os.WriteFile(filepath.Join(root, "var/www/page.html"), []byte("token = "+token2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var read []string
	reuse := func(rel string) (FileResult, bool) {
		if rel == "/var/www/page.html" {
			mu.Lock()
			read = append(read, rel)
			mu.Unlock()
			return FileResult{}, false
		}
		r, ok := recorded[rel]
		return r, ok
	}
	inc, err := Scan(ctx, root, Options{Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Scan(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	inc.Duration, again.Duration = 0, 0
	if !reflect.DeepEqual(inc, again) {
		t.Errorf("reusing scan:\n%+v\nfull scan:\n%+v", inc, again)
	}
	if len(read) != 1 || len(inc.Findings) != 2 || !strings.HasPrefix(inc.Findings[1].Path, "/var/www/page.html") {
		t.Errorf("read %v, findings %v", read, inc.Findings)
	}
}
