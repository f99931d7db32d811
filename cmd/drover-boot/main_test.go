package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReportsBootedImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/drover"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/drover/image.json"), []byte(`{"role":"web","identity":"sha256:abc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	if code := run(root, &out, func() time.Time { return at }); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "role web image sha256:abc booted") {
		t.Errorf("console line: %q", out.String())
	}
	var st status
	b, err := os.ReadFile(filepath.Join(root, "run/drover/status"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status file: %v %s", err, b)
	}
	if st.State != "booted" || st.Role != "web" || !st.Time.Equal(at) {
		t.Errorf("status %+v", st)
	}
}

func TestFailsWithoutImageDescription(t *testing.T) {
	root := t.TempDir()
	var out bytes.Buffer
	if code := run(root, &out, time.Now); code == 0 {
		t.Fatal("exit 0 without /etc/drover/image.json")
	}
	b, _ := os.ReadFile(filepath.Join(root, "run/drover/status"))
	if !strings.Contains(string(b), `"state":"failed"`) || !strings.Contains(out.String(), "failed") {
		t.Errorf("status %s, console %q", b, out.String())
	}
}
