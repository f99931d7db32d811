package images

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReadManifest feeds the catalog's manifest reader arbitrary files: it returns a manifest with
// an identity and a role, or an error, never panics, and what it accepts survives a round trip.
func FuzzReadManifest(f *testing.F) {
	good, err := json.Marshal(&Manifest{Identity: "sha256:" + "ab12" + "cd34", Role: "web", Arch: "amd64", Created: time.Unix(1764835200, 0).UTC(),
		Artifacts: []Artifact{{Format: "raw", File: "disk.raw", Size: 1 << 20, Length: 2 << 20, SHA256: "00"}},
		Packages:  []Package{{Name: "nginx", Version: "1.22", Arch: "amd64"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"identity":"sha256:x","role":"web","artifacts":[null,{"format":"qcow2"}]}`))
	f.Add([]byte(`{"identity":"","role":""}`))
	f.Add([]byte(`[]`))
	path := filepath.Join(f.TempDir(), "manifest.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := readManifest(path)
		if err != nil {
			return
		}
		if m.Identity == "" || m.Role == "" {
			t.Fatalf("accepted a manifest without identity or role: %+v", m)
		}
		_ = m.ShortID()
		_ = m.Artifact("raw")
		_ = m.Artifact("qcow2")
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an accepted manifest does not encode: %v", err)
		}
		if err := os.WriteFile(path, again, 0o600); err != nil {
			t.Fatal(err)
		}
		m2, err := readManifest(path)
		if err != nil {
			t.Fatalf("a manifest drover wrote is refused: %v", err)
		}
		if third, _ := json.Marshal(m2); string(third) != string(again) {
			t.Fatalf("round trip changed the manifest:\n%s\n%s", again, third)
		}
	})
}
